//! `acr-credential-provider` replaced by this binary: every provider entry of the shipped
//! kubelet configs (AKS AgentBaker Linux, Windows, network-isolated, custom cloud, identity
//! bindings; the upstream examples and docs; OpenShift) run as the kubelet runs it, with the
//! entry's exact `args` and `env`, against the fake Azure of `tests/common/azure.rs`; every
//! answer decoded as strictly as the kubelet decodes it.
//!
//! **Where the node's files are.** The entries name `/etc/kubernetes/azure.json` (or
//! OpenShift's `/etc/kubernetes/cloud.conf`), which a test cannot write. The node's
//! environment (not the entry) gets `KUBELET_KEYRING_CONFIG`, this program's documented
//! setting channel under an upstream name, pointing at a plugin config whose `acr.endpoints`
//! name the fakes and whose `acr.cloudConfig` names the sandbox's copy of the file; a field
//! of the plugin config wins over the flag it corresponds to, as for every backend. The
//! Windows entries' `c:\k\azure.json` is, on Linux, a relative file name: the test writes
//! that very file in the working directory and the positional itself is read. A separate
//! test runs the AKS entry with its positional pointed at a sandbox file (JSON, then YAML,
//! changed between runs) to show the positional is what is read when nothing overrides it.
//!
//! One file per topic: `shipped_entries`, `identity_binding`, `cloud_config`, `azure_arc`,
//! `fates`; this one holds their shared helpers.
#![cfg(feature = "acr")]

mod azure_arc;
mod cloud_config;
mod fates;
mod identity_binding;
mod shipped_entries;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::azure::{
    aad_token, arc_himds, arc_key_file, claims, refresh_token, Fake, Script, Seen, ARC_PATH,
    ARC_ROOT_ENV, CLIENT, TENANT, USERNAME,
};
use crate::common::tls::{ca, server_cert, tls_front};
use crate::common::upstream::{entries, AuthConfig, Entry};
use crate::common::{run_with, sa_request, sa_token, Sandbox};
use keyring_api::upstream::Fate;

/// AKS's azure.json (fake values, AgentBaker's keys): user-assigned managed identity.
const AKS_AZURE_JSON: &str = include_str!("../data/upstream-configs/azure-json-aks-example.json");
/// Its `userAssignedIdentityID` and `tenantId`.
const AKS_KUBELET_IDENTITY: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const AKS_TENANT: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "sp-secret-dropin-canary";
const AUDIENCE: &str = "api://AKSIdentityBinding";

fn acr_entries() -> Vec<Entry> {
    entries(&["acr-credential-provider"])
}

/// The entry of the shipped config `file`.
fn entry(file: &str) -> Entry {
    acr_entries()
        .into_iter()
        .find(|e| e.file == file)
        .unwrap_or_else(|| panic!("no acr-credential-provider entry in {file}"))
}

/// One node: a sandbox, the fake Azure, and the node's environment.
struct Node {
    sb: Sandbox,
    fake: Fake,
    env: Vec<(String, String)>,
    cloud_config: PathBuf,
}

impl Node {
    /// A node for `entry` whose cloud config holds `cloud_config`; `acr_extra` goes into
    /// the plugin config's `acr:` section; `authority`: point Entra ID at the fake there.
    fn new(
        entry: &Entry,
        script: Script,
        cloud_config: &str,
        acr_extra: &str,
        authority: bool,
    ) -> Node {
        Node::with(entry, Fake::start(script), cloud_config, |f| {
            format!("{}{acr_extra}", f.endpoints(authority))
        })
    }

    /// An AKS node (AgentBaker's azure.json, a user-assigned kubelet identity) whose ACR is
    /// `login`, and the refresh token its exchange hands out.
    fn aks(entry: &Entry, login: &str) -> (Node, String) {
        let refresh = refresh_token(3 * 3600);
        let node = Node::new(
            entry,
            Script::ok_for(login, &refresh),
            AKS_AZURE_JSON,
            "",
            true,
        );
        (node, refresh)
    }

    /// A node with `fake` whose `acr:` section (without `cloudConfig`) is `acr(&fake)`.
    fn with(entry: &Entry, fake: Fake, cloud_config: &str, acr: impl Fn(&Fake) -> String) -> Node {
        let sb = Sandbox::new();
        let mut acr = acr(&fake);
        let given = entry
            .provider
            .args
            .first()
            .expect("a cloud config argument");
        let path = if Path::new(given).is_absolute() {
            let copy = sb
                .tmp
                .path()
                .join("node")
                .join(Path::new(given).file_name().expect("name"));
            acr.push_str(&format!("  cloudConfig: {}\n", copy.display()));
            copy
        } else {
            sb.cwd.join(given)
        };
        crate::common::write(&path, cloud_config);
        let keyring = sb.tmp.path().join("keyring.yaml");
        crate::common::write(
            &keyring,
            &format!("apiVersion: kubelet-keyring/v1alpha1\nkind: KeyringConfig\nacr:\n{acr}"),
        );
        Node {
            env: vec![
                (
                    "KUBELET_KEYRING_CONFIG".into(),
                    keyring.display().to_string(),
                ),
                ("KUBELET_KEYRING_NO_CACHE".into(), "1".into()),
            ],
            sb,
            fake,
            cloud_config: path,
        }
    }

    /// The node's environment, as pairs.
    fn env_pairs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn run(&self, entry: &Entry, request: &str, extra_env: &[(&str, &str)]) -> Output {
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend_from_slice(extra_env);
        run_with(self.sb.upstream_command(entry, &env), request.as_bytes())
    }
}

/// An image the pattern matches (`*` → `myacr`, then `eastus` for a region label).
fn image_for(pattern: &str) -> String {
    format!(
        "{}/team/app:1",
        pattern.replacen('*', "myacr", 1).replace('*', "eastus")
    )
}

/// The `--registry-mirror` of the entry, as `(source, acr)` pairs.
fn mirrors(entry: &Entry) -> Vec<(String, String)> {
    entry
        .provider
        .args
        .iter()
        .filter_map(|a| a.strip_prefix("--registry-mirror="))
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.rsplit_once(':'))
        .map(|(s, t)| (s.to_string(), t.to_string()))
        .collect()
}

fn auth(entry: &Entry, out: &Output) -> BTreeMap<String, AuthConfig> {
    let r = entry.response(out);
    assert_eq!(r.cache_key_type, "Registry", "{}", entry.label());
    r.auth.unwrap_or_default()
}

fn creds(password: &str) -> AuthConfig {
    AuthConfig {
        username: USERNAME.into(),
        password: password.into(),
    }
}

/// An ACR answer as upstream's: `entries`, and the empty credential under `*.azurecr.*`.
fn acr_answer<const N: usize>(entries: [(String, AuthConfig); N]) -> BTreeMap<String, AuthConfig> {
    let mut m = BTreeMap::from(entries);
    m.insert(
        ANONYMOUS.to_string(),
        AuthConfig {
            username: String::new(),
            password: String::new(),
        },
    );
    m
}

/// The key of upstream's anonymous entry.
const ANONYMOUS: &str = "*.azurecr.*";

fn imds_calls(fake: &Fake) -> Vec<Seen> {
    fake.seen()
        .into_iter()
        .filter(|s| s.path == "/metadata/identity/oauth2/token")
        .collect()
}

/// The requests to the identity-binding endpoint (`POST /`).
fn binding_posts(fake: &Fake) -> Vec<Seen> {
    fake.seen().into_iter().filter(|s| s.path == "/").collect()
}

/// The exchange went to ACR with `service` and the Entra token of `stage`.
fn assert_exchanged(fake: &Fake, service: &str, stage: &str, label: &str) {
    let ex = fake.one("POST", "/oauth2/exchange");
    assert_eq!(
        ex.form["grant_type"], "access_token_refresh_token",
        "{label}"
    );
    assert_eq!(ex.form["service"], service, "{label}");
    assert_eq!(claims(&ex.form["access_token"])["m"], stage, "{label}");
}

/// The stderr of a run that must have exited 2 (a refused setting; warnings may come first).
fn exit_2_stderr(out: &Output) -> String {
    let err = crate::common::stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}
