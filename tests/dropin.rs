//! The binary installed under the upstream plugins' names, run with the exact `args` and `env`
//! of every kubelet config that node images ship (tests/data/upstream-configs).

mod common;

use common::dropin::entries;

#[test]
fn every_shipped_entry_is_found() {
    let ecr = entries(&["ecr-credential-provider"]);
    let gcp = entries(&[
        "auth-provider-gcp",
        "gcr-credential-provider",
        "gcp-credential-provider",
    ]);
    let acr = entries(&["acr-credential-provider"]);
    assert!(ecr.len() >= 15, "{}", ecr.len());
    assert!(gcp.len() >= 5, "{}", gcp.len());
    assert!(acr.len() >= 8, "{}", acr.len());
}
