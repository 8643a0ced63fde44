//! Hostile input: gcp. What the backend's peers (the metadata server, OAuth token endpoints,
//! Google STS, the IAM credentials API) and an operator's mirror list can put in front of
//! it: never a panic, never an answer cached wider than it holds.
#![cfg(feature = "gcp")]

use crate::common::http::{json, Fake, Reply, Req};
use crate::common::*;

const V1: &str = "credentialprovider.kubelet.k8s.io/v1";
const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const DOCKERCFG_PATH: &str = "/computeMetadata/v1/instance/attributes/google-dockercfg";

/// A fake Google endpoint (JSON, `Metadata-Flavor: Google` on every reply).
fn google(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Fake {
    Fake::start(
        "Content-Type: application/json\r\nMetadata-Flavor: Google\r\n",
        handler,
    )
}

/// A token endpoint's answer.
fn token_reply(token: &str, expires_in: &str) -> Reply {
    json(
        200,
        &format!(r#"{{"access_token":"{token}","expires_in":{expires_in},"token_type":"Bearer"}}"#),
    )
}

fn config(s: &Sandbox, text: &str) -> String {
    let p = s.tmp.path().join("keyring.yaml");
    write(&p, text);
    p.display().to_string()
}

// ---------------------------------------------------------------------------------------
// Scope of "not mine".

/// `*.mirror.example.com/gcr` makes `/gcr` of those hosts the backend's, and only `/gcr`:
/// pulling another path of such a host gets the empty answer for that image alone. Cached for
/// the registry (as it once was, by us and by the kubelet), it was then served for the next
/// pull through `/gcr` for five minutes instead of the token.
#[test]
fn another_path_of_a_mirror_host_is_refused_for_that_image_only() {
    let md = google(|r| match r.path.as_str() {
        TOKEN_PATH => token_reply("ya29.mirror-token", "3599"),
        _ => json(404, "{}"),
    });
    let s = Sandbox::new();
    let cfg = config(&s, "gcp:\n  mirrors: [\"*.mirror.example.com/gcr\"]\n");
    let run = |image: &str| {
        let mut cmd = s.command(&["--config", &cfg]);
        cmd.env("GCE_METADATA_HOST", md.host());
        run_with(cmd, request(V1, image).as_bytes())
    };

    let resp = stdout_json(&run("eu.mirror.example.com/other/x"));
    assert_eq!(resp["auth"], serde_json::json!({}), "{resp}");
    assert_eq!(resp["cacheKeyType"], "Image", "{resp}");
    assert!(md.requests().is_empty(), "the metadata server was asked");

    let resp = stdout_json(&run("eu.mirror.example.com/gcr/x"));
    assert_eq!(
        creds(&resp, "eu.mirror.example.com/gcr"),
        ("oauth2accesstoken".into(), "ya29.mirror-token".into()),
        "{resp}"
    );
    assert_eq!(resp["cacheKeyType"], "Image", "{resp}");

    // A host no rule of the backend covers at any path is still refused for the registry.
    let resp = stdout_json(&run("registry.example.com/other/x"));
    assert_eq!(resp["auth"], serde_json::json!({}), "{resp}");
    assert_eq!(resp["cacheKeyType"], "Registry", "{resp}");
}

/// The same for a docker config delivered by metadata (`gcp.dockercfg`): an entry for
/// `registry.example.com/team` means another path of the host has no entry, not the host.
#[test]
fn another_path_of_a_metadata_dockercfg_entry_is_refused_for_that_image_only() {
    let cfg_body = serde_json::json!({
        "registry.example.com/team": {"username": "robot", "password": "team-secret"},
    })
    .to_string();
    let md = google(move |r| match r.path.as_str() {
        DOCKERCFG_PATH => json(200, &cfg_body),
        _ => json(404, "{}"),
    });
    let s = Sandbox::new();
    let cfg = config(&s, "gcp:\n  dockercfg: true\n");
    let run = |image: &str| {
        let mut cmd = s.command(&["--config", &cfg]);
        cmd.env("GCE_METADATA_HOST", md.host());
        run_with(cmd, request(V1, image).as_bytes())
    };

    let resp = stdout_json(&run("registry.example.com/other/x"));
    assert_eq!(resp["auth"], serde_json::json!({}), "{resp}");
    assert_eq!(resp["cacheKeyType"], "Image", "{resp}");

    let resp = stdout_json(&run("registry.example.com/team/x"));
    assert_eq!(
        creds(&resp, "registry.example.com/team"),
        ("robot".into(), "team-secret".into()),
        "{resp}"
    );
}
