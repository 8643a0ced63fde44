//! The plugin config's `acr` section: an invalid one fails naming its field; the example
//! config parses and validates.

use super::*;

#[test]
fn invalid_acr_section_fails_with_its_field() {
    let run = Run::new(
        "acr:\n  mirrors:\n    - source: https://mcr.microsoft.com\n      registry: myacr.azurecr.io\n",
    );
    assert_config_error(
        &run.image("docker.io/library/nginx", &[]),
        &["acr.mirrors[0].source"],
    );
    let run =
        Run::new("acr:\n  mirrors:\n    - source: mcr.microsoft.com\n      registry: evil.com\n");
    assert_config_error(
        &run.image("docker.io/library/nginx", &[]),
        &["acr.mirrors[0].registry", "not an ACR login server"],
    );
}

#[test]
fn example_config_parses_and_validates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/acr.yaml");
    let text = std::fs::read_to_string(path).expect("config/acr.yaml");

    #[derive(serde::Deserialize)]
    struct Whole {
        acr: keyring_acr::Config,
    }
    let whole: Whole = serde_norway::from_str(&text).expect("config/acr.yaml parses");
    let settings = whole.acr.validate().expect("config/acr.yaml is valid");
    assert_eq!(
        whole.acr.cloud_config.as_deref(),
        Some(Path::new("/etc/kubernetes/azure.json"))
    );
    assert_eq!(settings.mirrors.len(), 2);
    assert_eq!(settings.mirrors[0].source, "mcr.microsoft.com");

    // The binary takes the whole file; a non-ACR image is answered without I/O.
    let sb = Sandbox::new();
    let out = sb.run(
        &["--no-cache", "--config", path, "get-credentials"],
        &crate::common::request(V1, "docker.io/library/nginx"),
    );
    let v = crate::common::stdout_json(&out);
    assert_eq!(v["auth"], serde_json::json!({}), "{v}");
    // An ACR image reads azure.json, which this machine does not have.
    assert!(!Path::new("/etc/kubernetes/azure.json").exists());
    let out = sb.run(
        &["--no-cache", "--config", path, "get-credentials"],
        &crate::common::request(V1, "mcr.microsoft.com/oss/nginx/nginx"),
    );
    assert_misconfigured(
        &out,
        &["myacr.azurecr.io", "/etc/kubernetes/azure.json"],
        &[],
    );
}
