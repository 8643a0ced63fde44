//! Black-box tests of the ACR backend: the built binary against fake IMDS, Entra ID (AAD) and
//! ACR (`/v2/` challenge, `/oauth2/exchange`) servers on 127.0.0.1, one per test.
//!
//! Each identity kind (managed identity system- and user-assigned, service principal with
//! secret or certificate, workload identity, KEP-4412 service-account token), mirrors,
//! expiry, and each failing stage. The fakes record every request so the tests can assert
//! what a real IMDS, Entra ID and ACR require (grant types, scope or resource, assertion type
//! and signature, tenant, service); failures must exit 1 with one line on stderr naming the
//! stage, and no secret, token or assertion may appear on stderr.
//!
//! One file per topic: `managed_identity`, `service_principal`, `service_accounts` (workload
//! identity, KEP-4412), `hosts`, `failures`, `config`; this one holds their shared helpers.
#![cfg(feature = "acr")]

mod config;
mod failures;
mod hosts;
mod managed_identity;
mod service_accounts;
mod service_principal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::azure::{
    aad_token, arc_key_file, assert_assertion, claims, jwt, refresh_token, Fake, Script, Seen,
    CLIENT, LOGIN, TENANT, USERNAME,
};
use crate::common::tls::openssl;
use crate::common::Sandbox;

const V1: &str = "credentialprovider.kubelet.k8s.io/v1";
const SECRET: &str = "sp-secret-Zq9~do-not-leak";

// ---------------------------------------------------------------------------------------
// Running the binary

struct Run {
    sb: Sandbox,
    config: PathBuf,
}

impl Run {
    fn new(config_yaml: &str) -> Run {
        let sb = Sandbox::new();
        let config = sb.tmp.path().join("keyring.yaml");
        let run = Run { sb, config };
        run.configure(config_yaml);
        run
    }

    /// Writes the plugin config: the acr and docker-config backends, then `config_yaml`.
    fn configure(&self, config_yaml: &str) {
        crate::common::write(
            &self.config,
            &format!("apiVersion: kubelet-keyring/v1alpha1\nkind: KeyringConfig\nbackends: [acr, docker-config]\n{config_yaml}"),
        );
    }

    /// A run whose `acr:` section (for `fake`) reads `azure_json` as its cloud config.
    fn with_azure_json(fake: &Fake, azure_json: &str) -> Run {
        let run = Run::new("");
        let azure = run.path("azure.json");
        crate::common::write(&azure, azure_json);
        run.configure(&fake.acr_section(&format!("  cloudConfig: {}\n", azure.display())));
        run
    }

    fn command(&self, env: &[(&str, &str)]) -> Command {
        let config = self.config.to_str().expect("utf-8");
        let mut c = self
            .sb
            .command(&["--no-cache", "--config", config, "get-credentials"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Runs with the cache in the sandbox and extra global `args`.
    fn cached(&self, request: &str, args: &[&str]) -> Output {
        let config = self.config.to_str().expect("utf-8");
        let cmd = self.sb.command(&[&["--config", config][..], args].concat());
        crate::common::run_with(cmd, request.as_bytes())
    }

    fn run(&self, request: &str, env: &[(&str, &str)]) -> Output {
        crate::common::run_with(self.command(env), request.as_bytes())
    }

    fn image(&self, image: &str, env: &[(&str, &str)]) -> Output {
        self.run(&crate::common::request(V1, image), env)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.sb.tmp.path().join(name)
    }
}

/// The auth map of a successful answer, `{key: (username, password)}`, without the
/// anonymous `*.azurecr.*` entry, which every ACR answer must carry empty (checked here).
fn auth(out: &Output) -> BTreeMap<String, (String, String)> {
    let v = crate::common::stdout_json(out);
    assert_eq!(v["cacheKeyType"], "Registry", "{v}");
    let mut map: BTreeMap<String, (String, String)> = v["auth"]
        .as_object()
        .expect("auth")
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                (
                    a["username"].as_str().expect("username").to_string(),
                    a["password"].as_str().expect("password").to_string(),
                ),
            )
        })
        .collect();
    let anonymous = map.remove(keyring_acr::ANONYMOUS_KEY);
    if map.values().any(|(user, _)| user == USERNAME) {
        assert_eq!(anonymous, Some((String::new(), String::new())), "{v}");
    } else {
        assert_eq!(anonymous, None, "{v}");
    }
    map
}

/// `cacheDuration` in seconds.
fn cache_seconds(out: &Output) -> u64 {
    let v = crate::common::stdout_json(out);
    crate::common::go_secs(v["cacheDuration"].as_str().expect("cacheDuration"))
}

/// Exit 1, one line on stderr containing every `needles`, and none of `secrets`.
fn assert_failure(out: &Output, needles: &[&str], secrets: &[&str]) -> String {
    assert_failure_code(out, 1, needles, secrets)
}

/// Local set-up that is wrong (files, annotations): exit 2, as every backend's config error.
fn assert_misconfigured(out: &Output, needles: &[&str], secrets: &[&str]) -> String {
    assert_failure_code(out, 2, needles, secrets)
}

/// A bad `acr:` section is a config error: exit 2, before any request is looked at.
fn assert_config_error(out: &Output, needles: &[&str]) -> String {
    assert_failure_code(out, 2, needles, &[])
}

fn assert_failure_code(out: &Output, code: i32, needles: &[&str], secrets: &[&str]) -> String {
    let err = crate::common::assert_one_line_exit(out, code, secrets);
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from: {err}");
    }
    assert_no_secrets(&err, secrets);
    err
}

fn assert_no_secrets(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(!text.contains(s), "a secret leaked: {text}");
        // Nor any long fragment of it (a token's payload segment, say).
        if let Some(mid) = s.split('.').nth(1).filter(|m| m.len() > 16) {
            assert!(!text.contains(mid), "a token fragment leaked: {text}");
        }
    }
}

/// The exchange request carries what ACR needs, with this Entra token and tenant.
fn assert_exchange(fake: &Fake, service: &str, token_marker: &str) {
    let ex = fake.one("POST", "/oauth2/exchange");
    assert_eq!(ex.form["grant_type"], "access_token_refresh_token");
    assert_eq!(ex.form["service"], service);
    assert_eq!(ex.form["tenant"], TENANT);
    let claims = claims(&ex.form["access_token"]);
    assert_eq!(
        claims["m"], token_marker,
        "the Entra token of the right stage"
    );
    assert_eq!(ex.form["refresh_token"], ex.form["access_token"]);
    assert_eq!(
        ex.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let v2 = fake.one("GET", "/v2/");
    assert!(!v2.headers.contains_key("authorization"));
}

/// The AAD request is a client-credentials grant for ACR's scope by this client.
fn assert_aad(fake: &Fake) -> Seen {
    let aad = fake.one("POST", &format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(aad.form["grant_type"], "client_credentials");
    assert_eq!(aad.form["client_id"], CLIENT);
    assert_eq!(
        aad.form["scope"],
        "https://containerregistry.azure.net/.default"
    );
    assert!(fake
        .seen()
        .iter()
        .all(|s| s.path != "/metadata/identity/oauth2/token"));
    aad
}

fn assert_imds(fake: &Fake, id: Option<(&str, &str)>) {
    let imds = fake.one("GET", "/metadata/identity/oauth2/token");
    assert_eq!(imds.headers["metadata"], "true");
    assert_eq!(imds.query["api-version"], "2018-02-01");
    assert_eq!(
        imds.query["resource"],
        "https://containerregistry.azure.net"
    );
    let ids: Vec<(&str, &str)> = ["client_id", "msi_res_id", "object_id"]
        .into_iter()
        .filter_map(|k| imds.query.get(k).map(|v| (k, v.as_str())))
        .collect();
    assert_eq!(ids, id.into_iter().collect::<Vec<_>>());
}
