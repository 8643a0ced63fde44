//! Google's side for the gcp tests: the metadata server's paths, a fake endpoint that answers
//! with Google's headers, and gcloud's user credentials file.
#![allow(dead_code)]

use std::path::Path;

use super::http::{Fake, Reply, Req};

/// The metadata server's access token of the node's service account.
pub const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// The metadata server's `google-dockercfg` attribute.
pub const DOCKERCFG_PATH: &str = "/computeMetadata/v1/instance/attributes/google-dockercfg";

/// Headers of every fake reply: JSON, and the flavor the metadata server always sends.
pub const HEADERS: &str = "Content-Type: application/json\r\nMetadata-Flavor: Google\r\n";

/// A fake Google endpoint answering with `handler`.
pub fn fake(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Fake {
    Fake::start(HEADERS, handler)
}

/// gcloud's application default credentials under `home`: an `authorized_user` whose
/// `refresh_token` is redeemed at `token_uri`.
pub fn write_gcloud_user(home: &Path, token_uri: &str, refresh_token: &str) {
    super::write(
        &home.join(".config/gcloud/application_default_credentials.json"),
        &serde_json::json!({
            "type": "authorized_user",
            "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "csecret",
            "refresh_token": refresh_token,
            "token_uri": token_uri,
        })
        .to_string(),
    );
}
