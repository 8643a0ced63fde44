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
#![cfg(feature = "acr")]

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
const AKS_AZURE_JSON: &str = include_str!("data/upstream-configs/azure-json-aks-example.json");
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

/// Every pattern of every shipped entry, pulled by a node without a service-account token
/// (nodes' own and static pods' images): the kubelet identity of azure.json via IMDS, the
/// ACR refresh token under the image's registry (and the ACR's, for a mirror).
#[test]
fn every_shipped_entry_answers_every_pattern_with_the_node_identity() {
    let mut checked = 0;
    for entry in acr_entries() {
        let mirrors = mirrors(&entry);
        for pattern in &entry.provider.match_images {
            let label = format!("{} {pattern}", entry.label());
            let image = image_for(pattern);
            let registry = image.split('/').next().unwrap().to_string();
            let (login, expect_keys) = match mirrors.iter().find(|(s, _)| *s == registry) {
                Some((_, acr)) => (acr.clone(), vec![registry.clone(), acr.clone()]),
                None => (registry.clone(), vec![registry.clone()]),
            };
            if pattern.starts_with("*.custom.") {
                continue; // a custom cloud's suffix: custom_cloud_takes_its_suffix_from_the_environment_file
            }
            let (node, refresh) = Node::aks(&entry, &login);
            let out = node.run(&entry, &entry.request(&image), &[]);
            let a = auth(&entry, &out);
            let mut want: BTreeMap<String, AuthConfig> = expect_keys
                .iter()
                .map(|k| (k.clone(), creds(&refresh)))
                .collect();
            want.extend(acr_answer([]));
            assert_eq!(a, want, "{label}: {}", crate::common::stderr(&out));
            let imds = imds_calls(&node.fake);
            assert_eq!(imds.len(), 1, "{label}");
            assert_eq!(imds[0].query["client_id"], AKS_KUBELET_IDENTITY, "{label}");
            assert_eq!(
                imds[0].query["resource"],
                "https://containerregistry.azure.net"
            );
            assert_exchanged(&node.fake, &login, "imds", &label);
            // The tenant of the exchange is azure.json's, as upstream's.
            assert_eq!(
                node.fake.one("POST", "/oauth2/exchange").form["tenant"],
                AKS_TENANT
            );
            let err = crate::common::stderr(&out);
            assert!(
                !err.contains(&refresh) && !err.contains(&aad_token("imds")[..40]),
                "{err}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked} entry × pattern cases");
}

/// The identity-binding entries with a pod's service-account token: the token is exchanged
/// at the binding endpoint (client ID from the annotation, else `--ib-default-client-id`),
/// the result at ACR; the token shows up nowhere else. A mirrored image still uses the
/// node's identity, as upstream.
#[test]
fn identity_binding_entries_exchange_the_pods_token() {
    let ib: Vec<Entry> = acr_entries()
        .into_iter()
        .filter(|e| {
            e.provider
                .args
                .iter()
                .any(|a| a.starts_with("--ib-sni-name="))
        })
        .collect();
    assert_eq!(ib.len(), 2, "AgentBaker's two identity-binding configs");
    for entry in ib {
        let ta = entry
            .provider
            .token_attributes
            .as_ref()
            .expect("tokenAttributes");
        assert_eq!(ta.service_account_token_audience, AUDIENCE);
        let default_client = entry
            .provider
            .args
            .iter()
            .find_map(|a| a.strip_prefix("--ib-default-client-id="))
            .expect("a default client id");
        for (annotations, client) in [
            (vec![], default_client),
            (vec![("kubernetes.azure.com/acr-client-id", CLIENT)], CLIENT),
        ] {
            let label = format!("{} as {client}", entry.label());
            let (node, refresh) = Node::aks(&entry, "myacr.azurecr.io");
            let token = sa_token(AUDIENCE, "team", "puller", "sa-uid-1", 1);
            let out = node.run(
                &entry,
                &sa_request("myacr.azurecr.io/team/app:1", &token, &annotations),
                &[],
            );
            let a = auth(&entry, &out);
            assert_eq!(
                a,
                acr_answer([("myacr.azurecr.io".to_string(), creds(&refresh))]),
                "{label}"
            );
            let posts = binding_posts(&node.fake);
            assert_eq!(posts.len(), 1, "{label}: one binding exchange");
            let post = &posts[0];
            assert_eq!(post.method, "POST");
            assert_eq!(post.form["grant_type"], "client_credentials", "{label}");
            assert_eq!(
                post.form["client_assertion_type"],
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            );
            assert_eq!(post.form["client_assertion"], token, "{label}");
            assert_eq!(post.form["client_id"], client, "{label}");
            assert_eq!(
                post.form["scope"],
                "https://containerregistry.azure.net/.default"
            );
            assert!(
                imds_calls(&node.fake).is_empty(),
                "{label}: no node identity"
            );
            assert_exchanged(&node.fake, "myacr.azurecr.io", "ib", &label);
            crate::common::assert_token_not_shown(&token, &out, None);
        }
        // A mirrored image (network-isolated): the node's identity, even with a token.
        if let Some((source, acr)) = mirrors(&entry).into_iter().next() {
            let (node, refresh) = Node::aks(&entry, &acr);
            let token = sa_token(AUDIENCE, "kube-system", "coredns", "sa-uid-2", 2);
            let image = format!("{source}/oss/kubernetes/pause:3.9");
            let out = node.run(&entry, &sa_request(&image, &token, &[]), &[]);
            let a = auth(&entry, &out);
            assert_eq!(a.len(), 3, "{}", entry.label());
            assert_eq!(a[&source], creds(&refresh));
            assert_eq!(imds_calls(&node.fake).len(), 1);
            assert!(binding_posts(&node.fake).is_empty(), "no binding exchange");
            assert_exchanged(&node.fake, &acr, "imds", &entry.label());
        }
    }
}

/// AKS custom clouds: `cloud: AzureStackCloud` in azure.json and, in the kubelet's
/// environment, `AZURE_ENVIRONMENT_FILEPATH` naming the cloud's endpoints. Its
/// `containerRegistryDNSSuffix` makes `*.custom.registry.io` ACRs and its
/// `activeDirectoryEndpoint` is where the service principal authenticates. Without that
/// file the host is not an ACR: an empty answer and exit 0, as upstream.
#[test]
fn custom_cloud_takes_its_suffix_from_the_environment_file() {
    let entry = entry("aks-agentbaker-custom-cloud.yaml");
    let image = "myacr.custom.registry.io/team/app:1";
    let azure = format!(
        r#"{{"cloud":"AzureStackCloud","tenantId":"{TENANT}","aadClientId":"{CLIENT}","aadClientSecret":"{SECRET}","useManagedIdentityExtension":false}}"#
    );
    let refresh = refresh_token(3 * 3600);
    let node = Node::new(
        &entry,
        Script::ok_for("myacr.custom.registry.io", &refresh),
        &azure,
        "",
        false,
    );
    // The authority must be https: a TLS front of the fake, trusted through SSL_CERT_FILE.
    let certs = node.sb.tmp.path().join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    ca(&certs, "ca");
    server_cert(&certs, "ca", "IP:127.0.0.1");
    let port = tls_front(
        &certs.join("srv.pem"),
        &certs.join("srv.key"),
        node.fake.host(),
    );
    let env_file = node.sb.tmp.path().join("akscustom.json");
    crate::common::write(
        &env_file,
        &format!(
            r#"{{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://127.0.0.1:{port}/","containerRegistryDNSSuffix":".custom.registry.io","resourceManagerEndpoint":"https://management.custom.example/"}}"#
        ),
    );
    let env_path = env_file.display().to_string();
    let ca_path = certs.join("ca.pem").display().to_string();
    let out = node.run(
        &entry,
        &entry.request(image),
        &[
            ("AZURE_ENVIRONMENT_FILEPATH", &env_path),
            ("SSL_CERT_FILE", &ca_path),
        ],
    );
    let a = auth(&entry, &out);
    assert_eq!(
        a,
        acr_answer([("myacr.custom.registry.io".to_string(), creds(&refresh))])
    );
    let aad = node
        .fake
        .one("POST", &format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(aad.form["client_id"], CLIENT);
    assert_eq!(aad.form["client_secret"], SECRET);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(SECRET),
        "the secret is exchanged, never answered"
    );
    assert_exchanged(
        &node.fake,
        "myacr.custom.registry.io",
        "aad",
        "custom cloud",
    );

    // Without the environment file: not an ACR host, an empty answer, no request.
    let node = Node::new(&entry, Script::ok(&refresh), AKS_AZURE_JSON, "", true);
    let out = node.run(&entry, &entry.request(image), &[]);
    let r = entry.response(&out);
    assert!(r.auth.unwrap_or_default().is_empty());
    assert!(node.fake.seen().is_empty());
    // And AzureStackCloud without it fails with the variable named, for an ACR image.
    let node = Node::new(&entry, Script::ok(&refresh), &azure, "", false);
    let out = node.run(&entry, &entry.request("myacr.azurecr.io/app"), &[]);
    let err = crate::common::assert_one_line_exit(&out, 2, &[SECRET]);
    assert!(err.contains("AZURE_ENVIRONMENT_FILEPATH"), "{err}");
}

/// The positional cloud config itself, when nothing overrides it: the AKS entry with its
/// argument pointed at a sandbox file, JSON then YAML, read again on every invocation.
#[test]
fn the_positional_cloud_config_is_read_on_every_call() {
    let mut entry = entry("aks-agentbaker.yaml");
    entry.provider.args[0] = "azure.json".into(); // relative: the sandbox's working directory
    let (node, refresh) = Node::aks(&entry, "myacr.azurecr.io");
    assert_eq!(node.cloud_config, node.sb.cwd.join("azure.json"));
    let out = node.run(&entry, &entry.request("myacr.azurecr.io/app"), &[]);
    assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
    let yaml = format!(
        "cloud: AzurePublicCloud\ntenantId: {AKS_TENANT}\nuseManagedIdentityExtension: true\nuserAssignedIdentityID: {CLIENT}\n"
    );
    crate::common::write(&node.cloud_config, &yaml);
    auth(
        &entry,
        &node.run(&entry, &entry.request("myacr.azurecr.io/app"), &[]),
    );
    let ids: Vec<String> = imds_calls(&node.fake)
        .iter()
        .map(|s| s.query["client_id"].clone())
        .collect();
    assert_eq!(ids, [AKS_KUBELET_IDENTITY, CLIENT]);
    // A file that does not parse: exit 2 naming it, no value quoted.
    crate::common::write(&node.cloud_config, "aadClientSecret: [hunter2");
    let out = node.run(&entry, &entry.request("myacr.azurecr.io/app"), &[]);
    let err = crate::common::assert_one_line_exit(&out, 2, &["hunter2"]);
    assert!(err.contains("azure.json"), "{err}");
}

/// The fates of the variables and flags no shipped config passes: a refused variable exits
/// 2 naming it, a warned one is one warning line and the same credentials, `--version` and
/// `--help` answer as upstream's (the help lists every flag with its fate).
#[test]
fn fates_of_variables_and_flags() {
    let entry = entry("aks-agentbaker.yaml");
    let (node, refresh) = Node::aks(&entry, "myacr.azurecr.io");
    let req = entry.request("myacr.azurecr.io/app");
    // Every variable of the table with a fate other than honoured, set on its own (the
    // rows of cloud-config fields: resource_manager_endpoint_and_cloud_config_type).
    for var in keyring_acr::upstream::PLUGIN
        .env
        .iter()
        .filter(|v| !v.name.starts_with("azure.json "))
    {
        let value = "http://127.0.0.1:1/value";
        let out = node.run(&entry, &req, &[(var.name, value)]);
        match var.fate {
            Fate::Refused => {
                let err = crate::common::assert_one_line_exit(&out, 2, &[value]);
                assert!(
                    err.contains(var.name) && err.contains("not supported"),
                    "{err}"
                );
            }
            Fate::Warned => {
                assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
                let err = crate::common::stderr(&out);
                let lines: Vec<&str> = err.lines().filter(|l| l.contains(var.name)).collect();
                assert_eq!(lines.len(), 1, "{}: {err}", var.name);
                assert!(lines[0].contains("ignored"), "{err}");
            }
            Fate::Honoured => {}
        }
    }
    // HTTPS_PROXY (honoured) goes through a real CONNECT tunnel in tests/acr.rs
    // the_registry_is_reached_through_https_proxy_and_imds_directly; the fakes here are
    // loopback, which the proxy rules leave direct.

    let mut e = entry.clone();
    e.provider.args = vec!["--version".into()];
    let out = run_with(node.sb.upstream_command(&e, &[]), b"");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("acr-credential-provider"));
    e.provider.args = vec!["--help".into()];
    let out = run_with(node.sb.upstream_command(&e, &[]), b"");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for flag in [
        "--registry-mirror",
        "--ib-sni-name",
        "--ib-default-client-id",
        "--ib-default-tenant-id",
        "--ib-apiserver-ip",
        "--vmodule",
        "AZURE_ENVIRONMENT_FILEPATH",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    // klog's -v takes a value as upstream's; the logging flags are accepted.
    e.provider.args = vec![
        node.cloud_config.display().to_string(),
        "-v".into(),
        "2".into(),
        "--logtostderr=true".into(),
        "--log-flush-frequency=5s".into(),
    ];
    let out = node.run(&e, &req, &[]);
    assert_eq!(auth(&e, &out)["myacr.azurecr.io"], creds(&refresh));
}

/// `--registry-mirror` with a port, which upstream cannot parse: `mirror.local:5000`'s
/// images get the ACR's credentials under `mirror.local:5000` (the key the kubelet
/// matches). A malformed value exits 2 naming the flag.
#[test]
fn registry_mirror_with_a_port() {
    let mut entry = entry("aks-agentbaker-network-isolated.yaml");
    entry.provider.match_images.push("mirror.local:5000".into());
    entry.provider.args[1] =
        "--registry-mirror=mcr.microsoft.com:test.azurecr.io,mirror.local:5000:other.azurecr.io"
            .into();
    let (node, refresh) = Node::aks(&entry, "other.azurecr.io");
    let out = node.run(&entry, &entry.request("mirror.local:5000/team/app:1"), &[]);
    let a = auth(&entry, &out);
    assert_eq!(
        a,
        acr_answer([
            ("mirror.local:5000".to_string(), creds(&refresh)),
            ("other.azurecr.io".to_string(), creds(&refresh)),
        ])
    );
    assert_exchanged(&node.fake, "other.azurecr.io", "imds", "port mirror");
    entry.provider.args[1] = "--registry-mirror=mirror.local:5000".into();
    let out = node.run(&entry, &entry.request("mirror.local:5000/team/app:1"), &[]);
    let err = crate::common::assert_one_line_exit(&out, 2, &[]);
    assert!(err.contains("--registry-mirror"), "{err}");
}

/// The identity-binding exchange over real TLS, as upstream makes it: `https://<sni>/`
/// dialled at the API server's address whatever the name resolves to (`test.sni.local`
/// resolves nowhere), the certificate checked for the SNI name against the cluster CA only,
/// no proxy. A certificate of another CA is refused before anything is sent. The binding
/// is given in the plugin config (it wins over the entry's `--ib-*`) for the port of the
/// test's TLS front (upstream dials 443 only) and its CA file.
#[test]
fn identity_binding_over_real_tls_pinned_to_the_api_server() {
    let entry = entry("aks-agentbaker-identity-binding.yaml");
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    let certs = tempfile::tempdir().expect("tempdir");
    let dir = certs.path();
    ca(dir, "cluster");
    ca(dir, "other");
    server_cert(dir, "cluster", "DNS:test.sni.local");
    let port = tls_front(&dir.join("srv.pem"), &dir.join("srv.key"), fake.host());
    let binding = |ca_file: &str| {
        format!(
            "  identityBinding:\n    sniName: test.sni.local\n    apiServer: 127.0.0.1\n    port: {port}\n    caFile: {}\n    defaultClientId: my-client-id\n",
            dir.join(ca_file).display()
        )
    };
    let node = Node::with(&entry, fake, AKS_AZURE_JSON, |f| {
        format!(
            "{}{}",
            f.endpoints_but_binding(true),
            binding("cluster.pem")
        )
    });
    let token = sa_token(AUDIENCE, "team", "puller", "sa-uid-1", 1);
    let req = sa_request("myacr.azurecr.io/team/app:1", &token, &[]);
    // A proxy in the environment is not used for the binding endpoint (the fake
    // registry, 127.0.0.1, is exempt by NO_PROXY).
    let proxy = [
        ("NO_PROXY", "127.0.0.1"),
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ("https_proxy", "http://127.0.0.1:9"),
    ];
    let out = node.run(&entry, &req, &proxy);
    assert_eq!(
        auth(&entry, &out),
        acr_answer([("myacr.azurecr.io".to_string(), creds(&refresh))]),
        "{}",
        crate::common::stderr(&out)
    );
    let posts = binding_posts(&node.fake);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].headers["host"], format!("test.sni.local:{port}"));
    assert_eq!(posts[0].form["client_id"], "my-client-id");
    assert_eq!(posts[0].form["client_assertion"], token);

    // The endpoint's certificate from another CA: refused at the handshake.
    let keyring = node.env[0].1.clone();
    let text = std::fs::read_to_string(&keyring).expect("keyring config");
    crate::common::write(
        Path::new(&keyring),
        &text.replace("cluster.pem", "other.pem"),
    );
    let before = node.fake.seen().len();
    let out = node.run(&entry, &req, &[]);
    let line = crate::common::assert_one_line_failure(&out, &[&token]);
    assert!(
        line.contains("identity-binding token") && line.contains("UnknownIssuer"),
        "{line}"
    );
    assert_eq!(
        node.fake.seen().len(),
        before,
        "nothing went through an untrusted TLS"
    );
}

/// Issue 22 point 15: every ACR answer carries upstream's anonymous entry
/// `"*.azurecr.*": {"", ""}` (kubernetes PR 74715). The kubelet tries the refresh token
/// first and the empty credential (an anonymous pull) after it, so a registry that allows
/// anonymous pulls keeps working for a node whose identity lacks AcrPull. The pattern
/// matches three-label hosts only, as upstream's: a geo-replica host gets the token alone.
#[test]
fn an_acr_answer_carries_upstreams_anonymous_entry_tried_after_the_token() {
    let entry = entry("aks-agentbaker.yaml");
    for (host, tries) in [("myacr.azurecr.io", 2), ("myacr.eastus.geo.azurecr.io", 1)] {
        let (node, refresh) = Node::aks(&entry, host);
        let answer = node
            .sb
            .kubelet_pull(&entry, &node.env_pairs(), &format!("{host}/team/app:1"))
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let t = &answer.tries;
        assert_eq!(t.len(), tries, "{host}: {:?}", answer.lines);
        assert_eq!(
            (t[0].0.as_str(), &t[0].1),
            (host, &creds(&refresh)),
            "{host}"
        );
        if tries == 2 {
            assert_eq!(t[1].0, ANONYMOUS);
            assert_eq!(
                (t[1].1.username.as_str(), t[1].1.password.as_str()),
                ("", "")
            );
        }
    }
}

/// A node with an Arc agent played by the fake: `root` holds the agent's files, the key file
/// `k1.key` holds `key`, and the fake's challenge names it.
fn arc_node(entry: &Entry, azure_json: &str, root: &Path, key: &str, echo: bool) -> (Node, String) {
    let refresh = refresh_token(3 * 3600);
    let mut script = Script::ok(&refresh);
    script.arc.realm = arc_key_file(root, "k1.key", key);
    script.arc.key = key.into();
    script.arc.echo = echo;
    (Node::new(entry, script, azure_json, "", true), refresh)
}

/// Issue 22 point 16: on an Azure Arc-enabled machine (`IDENTITY_ENDPOINT` and
/// `IMDS_ENDPOINT` in the kubelet's environment) the managed identity comes from the Arc
/// agent as upstream's SDK gets it: a first GET answered 401 naming a key file in
/// `/var/opt/azcmagent/tokens`, the same GET again with `Authorization: Basic <key>`; the
/// user-assigned identity's client ID in the query and echoed back. The key is read from
/// the file and shows up nowhere else. IMDS is not asked.
#[test]
fn azure_arc_managed_identity_answers_through_the_agents_key_file_challenge() {
    let entry = entry("aks-agentbaker.yaml");
    let root = tempfile::tempdir().expect("tempdir");
    let key = "arc-key-3f9a0c1d-do-not-leak";
    let (node, refresh) = arc_node(&entry, AKS_AZURE_JSON, root.path(), key, true);
    let env = node.fake.arc_env(root.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = node.run(&entry, &entry.request("myacr.azurecr.io/app"), &env);
    assert_eq!(
        auth(&entry, &out)["myacr.azurecr.io"],
        creds(&refresh),
        "{}",
        crate::common::stderr(&out)
    );
    let calls = node.fake.arc_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for c in &calls {
        assert_eq!(c.method, "GET");
        assert_eq!(c.headers["metadata"], "true");
        assert_eq!(c.query["api-version"], "2020-06-01");
        assert_eq!(c.query["resource"], "https://containerregistry.azure.net");
        assert_eq!(c.query["client_id"], AKS_KUBELET_IDENTITY);
    }
    assert!(!calls[0].headers.contains_key("authorization"));
    assert_eq!(calls[1].headers["authorization"], format!("Basic {key}"));
    assert!(imds_calls(&node.fake).is_empty(), "no IMDS on Arc");
    assert_exchanged(&node.fake, "myacr.azurecr.io", "arc", "arc");
    crate::common::assert_token_not_shown(key, &out, None);

    // The agent's binary marks Arc too, without IMDS_ENDPOINT; a system-assigned identity.
    let root = tempfile::tempdir().expect("tempdir");
    arc_himds(root.path());
    let system = r#"{"cloud":"AzurePublicCloud","useManagedIdentityExtension":true}"#;
    let (node, refresh) = arc_node(&entry, system, root.path(), key, true);
    let root_s = root.path().display().to_string();
    let endpoint = node.fake.url(ARC_PATH);
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        (ARC_ROOT_ENV, root_s.as_str()),
    ];
    let out = node.run(&entry, &entry.request("myacr.azurecr.io/app"), &env);
    assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
    let calls = node.fake.arc_calls();
    assert_eq!(calls.len(), 2);
    assert!(!calls[1].query.contains_key("client_id"));
    // No tenantId in the cloud config: the exchange sends an empty tenant, as upstream's.
    assert_eq!(node.fake.one("POST", "/oauth2/exchange").form["tenant"], "");
    // Neither the binary nor IMDS_ENDPOINT: IMDS, whatever IDENTITY_ENDPOINT says.
    std::fs::remove_dir_all(root.path().join("opt")).expect("rm himds");
    let out = node.run(&entry, &entry.request("myacr.azurecr.io/app"), &env);
    assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
    assert_eq!(node.fake.arc_calls().len(), 2, "no more Arc calls");
    assert_eq!(imds_calls(&node.fake).len(), 1);
}

/// An Arc agent too old for user-assigned identities answers with the machine's own: without
/// the echo of the client ID asked for, the token is refused (exit 1, one line). App
/// Service's managed identity (`IDENTITY_HEADER` beside `IDENTITY_ENDPOINT`) is refused with
/// exit 2 naming both; alone, `IDENTITY_HEADER` is one warning line, as upstream ignores it.
#[test]
fn azure_arc_without_the_identity_echo_and_app_service_are_refused() {
    let entry = entry("aks-agentbaker.yaml");
    let root = tempfile::tempdir().expect("tempdir");
    let key = "arc-key-old-agent";
    let (node, _) = arc_node(&entry, AKS_AZURE_JSON, root.path(), key, false);
    let env = node.fake.arc_env(root.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let req = entry.request("myacr.azurecr.io/app");
    let out = node.run(&entry, &req, &env);
    let err = crate::common::assert_one_line_failure(&out, &[key]);
    assert!(
        err.contains("Azure Arc") && err.contains("did not confirm the user-assigned identity"),
        "{err}"
    );
    assert!(node
        .fake
        .seen()
        .iter()
        .all(|s| s.path != "/oauth2/exchange"));

    let mut app_service = env.clone();
    app_service.push(("IDENTITY_HEADER", "header-secret"));
    let before = node.fake.seen().len();
    let out = node.run(&entry, &req, &app_service);
    let err = exit_2_stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("IDENTITY_ENDPOINT and IDENTITY_HEADER")
            && last.contains("App Service")
            && last.contains("not supported")
            && !err.contains("header-secret"),
        "{err}"
    );
    assert_eq!(node.fake.seen().len(), before, "nothing asked");
}

/// Issue 22 point 17: a pod's service-account token whose service account lacks
/// `kubernetes.azure.com/acr-client-id` or `kubernetes.azure.com/acr-tenant-id` (or has it
/// empty) is an error, as upstream's; exit 2 here, a misconfiguration (upstream: 1), one line
/// naming the annotation, nothing asked of Azure. With both, the token is the assertion of
/// that application in that tenant. Under an identity binding an annotation that is there
/// but empty is used as upstream uses it: an error, not the default client ID.
#[test]
fn a_service_account_token_without_the_acr_annotations_is_an_error_as_upstream() {
    let entry = entry("aks-agentbaker.yaml");
    let refresh = refresh_token(3 * 3600);
    let node = Node::new(&entry, Script::per_client(), AKS_AZURE_JSON, "", true);
    let token = sa_token(
        "api://AzureADTokenExchange",
        "team",
        "puller",
        "sa-uid-9",
        9,
    );
    let image = "myacr.azurecr.io/team/app:1";
    for (annotations, missing) in [
        (vec![], "kubernetes.azure.com/acr-client-id"),
        (
            vec![("kubernetes.azure.com/acr-client-id", "")],
            "kubernetes.azure.com/acr-client-id",
        ),
        (
            vec![("kubernetes.azure.com/acr-client-id", CLIENT)],
            "kubernetes.azure.com/acr-tenant-id",
        ),
        (
            vec![
                ("kubernetes.azure.com/acr-client-id", CLIENT),
                ("kubernetes.azure.com/acr-tenant-id", ""),
            ],
            "kubernetes.azure.com/acr-tenant-id",
        ),
    ] {
        let out = node.run(&entry, &sa_request(image, &token, &annotations), &[]);
        let err = crate::common::assert_one_line_exit(&out, 2, &[&token]);
        assert!(
            err.contains(missing) && err.contains("missing or empty"),
            "{err}"
        );
    }
    assert!(node.fake.seen().is_empty(), "nothing asked of Azure");
    let out = node.run(
        &entry,
        &sa_request(
            image,
            &token,
            &[
                ("kubernetes.azure.com/acr-client-id", CLIENT),
                ("kubernetes.azure.com/acr-tenant-id", TENANT),
            ],
        ),
        &[],
    );
    let a = auth(&entry, &out);
    assert_eq!(a["myacr.azurecr.io"].username, USERNAME);
    let aad = node
        .fake
        .one("POST", &format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(aad.form["client_id"], CLIENT);
    assert_eq!(aad.form["client_assertion"], token);
    assert!(imds_calls(&node.fake).is_empty());
    // The exchange names the cloud config's tenant, as upstream's, not the annotation's.
    assert_eq!(
        node.fake.one("POST", "/oauth2/exchange").form["tenant"],
        AKS_TENANT
    );
    drop(refresh);

    // An identity binding: an empty annotation is not the default client ID.
    let entry = entry_with_ib();
    let (node, _) = Node::aks(&entry, "myacr.azurecr.io");
    let token = sa_token(AUDIENCE, "team", "puller", "sa-uid-1", 1);
    let out = node.run(
        &entry,
        &sa_request(image, &token, &[("kubernetes.azure.com/acr-client-id", "")]),
        &[],
    );
    let err = crate::common::assert_one_line_exit(&out, 2, &[&token]);
    assert!(err.contains("annotation is empty"), "{err}");
    assert!(binding_posts(&node.fake).is_empty());
}

/// AgentBaker's identity-binding entry.
fn entry_with_ib() -> Entry {
    entry("aks-agentbaker-identity-binding.yaml")
}

/// Issue 22 point 18: `--ib-default-tenant-id` (and the tenant annotation) is checked and,
/// as upstream, sent nowhere: the binding exchange carries no tenant, and the ACR exchange
/// names the cloud config's `tenantId`, empty when it has none.
#[test]
fn the_identity_binding_tenant_is_sent_nowhere_as_upstream() {
    let entry = entry_with_ib();
    assert!(entry
        .provider
        .args
        .iter()
        .any(|a| a.starts_with("--ib-default-tenant-id=")));
    let no_tenant = format!(
        r#"{{"cloud":"AzurePublicCloud","useManagedIdentityExtension":true,"userAssignedIdentityID":"{AKS_KUBELET_IDENTITY}"}}"#
    );
    for (azure_json, tenant) in [(AKS_AZURE_JSON, AKS_TENANT), (no_tenant.as_str(), "")] {
        let refresh = refresh_token(3 * 3600);
        let node = Node::new(&entry, Script::ok(&refresh), azure_json, "", true);
        let token = sa_token(AUDIENCE, "team", "puller", "sa-uid-1", 1);
        let out = node.run(
            &entry,
            &sa_request(
                "myacr.azurecr.io/team/app:1",
                &token,
                &[("kubernetes.azure.com/acr-tenant-id", TENANT)],
            ),
            &[],
        );
        assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
        let post = &binding_posts(&node.fake)[0];
        assert!(!post.form.contains_key("tenant") && !post.form.contains_key("tenant_id"));
        assert_eq!(
            node.fake.one("POST", "/oauth2/exchange").form["tenant"],
            tenant,
            "{azure_json}"
        );
    }
}

/// Issue 22 point 19: a cloud config's `resourceManagerEndpoint` (Azure Stack Hub, custom
/// clouds) names endpoints upstream discovers from ARM metadata, which this build does not
/// fetch: an ACR image fails with exit 2 naming the field and what to set, before any
/// request, unless the environment file (or `acr.endpoints.authorityHost`) gives the
/// authority; a built-in cloud's ARM endpoint is that cloud. `cloudConfigType` is read and
/// has no effect, as upstream's; a value that is not a string fails the file, as upstream's.
#[test]
fn resource_manager_endpoint_and_cloud_config_type() {
    let entry = entry("aks-agentbaker.yaml");
    let image = "myacr.azurecr.io/app";
    let sp = |extra: &str| {
        format!(
            r#"{{"cloud":"AzurePublicCloud","tenantId":"{TENANT}","aadClientId":"{CLIENT}","aadClientSecret":"{SECRET}"{extra}}}"#
        )
    };
    let stack = sp(r#","resourceManagerEndpoint":"https://management.local.azurestack.external/""#);
    let refresh = refresh_token(3 * 3600);
    let node = Node::new(&entry, Script::ok(&refresh), &stack, "", false);
    let out = node.run(&entry, &entry.request(image), &[]);
    let err = crate::common::assert_one_line_exit(&out, 2, &[SECRET]);
    assert!(
        err.contains("resourceManagerEndpoint https://management.local.azurestack.external/")
            && err.contains("AZURE_ENVIRONMENT_FILEPATH")
            && err.contains("acr.endpoints.authorityHost"),
        "{err}"
    );
    assert!(node.fake.seen().is_empty());
    // The authority given in the plugin config: the service principal authenticates there.
    let node = Node::new(&entry, Script::ok(&refresh), &stack, "", true);
    let out = node.run(&entry, &entry.request(image), &[]);
    assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
    // cloudConfigType, any string: no effect; a built-in cloud's ARM endpoint is that cloud.
    let node = Node::new(
        &entry,
        Script::ok(&refresh),
        &sp(
            r#","cloudConfigType":"secret","resourceManagerEndpoint":"https://management.azure.com/""#,
        ),
        "",
        true,
    );
    let out = node.run(&entry, &entry.request(image), &[]);
    assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
    crate::common::write(&node.cloud_config, &sp(r#","cloudConfigType":5"#));
    let out = node.run(&entry, &entry.request(image), &[]);
    let err = crate::common::assert_one_line_exit(&out, 2, &[SECRET]);
    assert!(
        err.contains("azure.json") && err.contains("not valid JSON"),
        "{err}"
    );
    // The rows of the table say so.
    let rows = keyring_acr::upstream::PLUGIN.env;
    let row = |n: &str| rows.iter().find(|v| v.name == n).expect(n);
    assert_eq!(
        row("azure.json resourceManagerEndpoint").fate,
        Fate::Refused
    );
    assert_eq!(row("azure.json cloudConfigType").fate, Fate::Honoured);
}

/// Issue 22 point 20: the `AZURE_*` identity variables, which upstream's credential provider
/// never reads, do not change the identity under its name: the node's user-assigned
/// identity from the cloud config, the cloud config's tenant in the exchange, one warning
/// line per variable. Nor do they complete a cloud config (`AZURE_TENANT_ID` for a service
/// principal without `tenantId`, `AZURE_FEDERATED_TOKEN_FILE` for workload identity without
/// `aadFederatedTokenFile`) or stand in for a missing one.
#[test]
fn azure_variables_do_not_change_the_identity_under_the_upstream_name() {
    let entry = entry("aks-agentbaker.yaml");
    let (node, refresh) = Node::aks(&entry, "myacr.azurecr.io");
    let token_file = node.sb.tmp.path().join("federated-token");
    crate::common::write(&token_file, "federated.token.value");
    let token_path = token_file.display().to_string();
    let vars = [
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_SECRET", SECRET),
        ("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent/cert.pem"),
        ("AZURE_FEDERATED_TOKEN_FILE", token_path.as_str()),
        ("AZURE_AUTHORITY_HOST", "https://login.example.invalid/"),
    ];
    let req = entry.request("myacr.azurecr.io/app");
    let out = node.run(&entry, &req, &vars);
    assert_eq!(auth(&entry, &out)["myacr.azurecr.io"], creds(&refresh));
    let imds = imds_calls(&node.fake);
    assert_eq!(imds[0].query["client_id"], AKS_KUBELET_IDENTITY);
    assert_eq!(
        node.fake.one("POST", "/oauth2/exchange").form["tenant"],
        AKS_TENANT
    );
    let err = crate::common::stderr(&out);
    for (name, _) in vars {
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(name)).collect();
        assert_eq!(lines.len(), 1, "{name}: {err}");
        assert!(lines[0].contains("ignored"), "{err}");
    }
    assert!(!err.contains(SECRET), "{err}");

    for (azure_json, needle) in [
        (
            format!(r#"{{"aadClientId":"{CLIENT}","aadClientSecret":"{SECRET}"}}"#),
            "no tenantId",
        ),
        (
            format!(
                r#"{{"tenantId":"{TENANT}","aadClientId":"{CLIENT}","useFederatedWorkloadIdentityExtension":true}}"#
            ),
            "aadFederatedTokenFile",
        ),
    ] {
        crate::common::write(&node.cloud_config, &azure_json);
        let out = node.run(&entry, &req, &vars);
        let err = exit_2_stderr(&out);
        assert!(
            err.lines().last().unwrap_or_default().contains(needle),
            "{err}"
        );
        assert!(
            !err.contains(SECRET) && !err.contains("federated.token"),
            "{err}"
        );
    }
    // No cloud config at all (no argument, no plugin config, no /etc/kubernetes/azure.json):
    // an error naming the argument, not an identity from the variables.
    assert!(!Path::new(keyring_acr::upstream::DEFAULT_CLOUD_CONFIG).exists());
    let mut bare = entry.clone();
    bare.provider.args.clear();
    let endpoints = node.sb.tmp.path().join("endpoints.yaml");
    crate::common::write(
        &endpoints,
        &format!(
            "apiVersion: kubelet-keyring/v1alpha1\nkind: KeyringConfig\nacr:\n{}",
            node.fake.endpoints(true)
        ),
    );
    let endpoints = endpoints.display().to_string();
    let mut env = vars.to_vec();
    env.push(("KUBELET_KEYRING_CONFIG", endpoints.as_str()));
    env.push(("KUBELET_KEYRING_NO_CACHE", "1"));
    let before = node.fake.seen().len();
    let out = run_with(node.sb.upstream_command(&bare, &env), req.as_bytes());
    let err = exit_2_stderr(&out);
    assert!(
        err.lines()
            .last()
            .unwrap_or_default()
            .contains("cloud config"),
        "{err}"
    );
    assert_eq!(node.fake.seen().len(), before, "nothing asked");
}

/// The stderr of a run that must have exited 2 (a refused setting; warnings may come first).
fn exit_2_stderr(out: &Output) -> String {
    let err = crate::common::stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}
