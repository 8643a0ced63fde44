//! Black-box tests of the ACR backend: the built binary against fake IMDS, Entra ID (AAD) and
//! ACR (`/v2/` challenge, `/oauth2/exchange`) servers on 127.0.0.1, one per test.
//!
//! Each identity kind (managed identity system- and user-assigned, service principal with
//! secret or certificate, workload identity, KEP-4412 service-account token), mirrors,
//! expiry, and each failing stage. The fakes record every request so the tests can assert
//! what a real IMDS, Entra ID and ACR require (grant types, scope or resource, assertion type
//! and signature, tenant, service); failures must exit 1 with one line on stderr naming the
//! stage, and no secret, token or assertion may appear on stderr.
#![cfg(feature = "acr")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::azure::{
    aad_token, arc_key_file, claims, jwt, now_s, refresh_token, Fake, Script, Seen, CLIENT, LOGIN,
    TENANT, USERNAME,
};
use crate::common::tls::openssl;
use crate::common::Sandbox;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

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

// ---------------------------------------------------------------------------------------
// Identity kinds

#[test]
fn a_system_assigned_managed_identity_answers_every_request_version_through_imds() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    for version in crate::common::VERSIONS {
        let out = run.run(
            &crate::common::request(version, "myacr.azurecr.io/team/app"),
            &[],
        );
        let v = crate::common::stdout_json(&out);
        assert_eq!(v["apiVersion"], version);
        assert_eq!(
            auth(&out),
            BTreeMap::from([(LOGIN.to_string(), (USERNAME.to_string(), refresh.clone()))])
        );
        assert_no_secrets(
            &crate::common::stderr(&out),
            &[&refresh, &aad_token("imds")],
        );
    }
    // One IMDS call per run; the tenant of the exchange came from the token's tid.
    let imds: Vec<Seen> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/metadata"))
        .collect();
    assert_eq!(imds.len(), 3);
    let first = Fake::start(Script::ok(&refresh));
    let run = Run::new(&first.acr_section(""));
    auth(&run.image("myacr.azurecr.io/app", &[]));
    assert_imds(&first, None);
    assert_exchange(&first, LOGIN, "imds");
    assert!(first.seen().iter().all(|s| !s.path.contains("oauth2/v2.0")));
}

/// Under this program's name too, an Azure Arc-enabled machine's managed identity comes from
/// the Arc agent (the key-file challenge), here a user-assigned one named by
/// `AZURE_CLIENT_ID` (no cloud config), echoed back by the agent; IMDS is not asked.
#[test]
fn azure_arc_managed_identity_under_the_own_name_too() {
    let root = tempfile::tempdir().expect("tempdir");
    let key = "arc-own-name-key-canary";
    let refresh = refresh_token(3 * 3600);
    let mut script = Script::ok(&refresh);
    script.arc.realm = arc_key_file(root.path(), "a.key", key);
    script.arc.key = key.into();
    let fake = Fake::start(script);
    let run = Run::new(&fake.acr_section(""));
    let mut env = fake.arc_env(root.path());
    env.push(("AZURE_CLIENT_ID".into(), CLIENT.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run.image("myacr.azurecr.io/app", &env);
    assert_eq!(
        auth(&out)[LOGIN].1,
        refresh,
        "{}",
        crate::common::stderr(&out)
    );
    let calls = fake.arc_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].query["client_id"], CLIENT);
    assert_eq!(calls[1].headers["authorization"], format!("Basic {key}"));
    assert!(fake
        .seen()
        .iter()
        .all(|s| s.path != "/metadata/identity/oauth2/token"));
    assert_exchange(&fake, LOGIN, "arc");
    assert_no_secrets(&crate::common::stderr(&out), &[key]);
}

#[test]
fn managed_identity_user_assigned_from_azure_json_and_env() {
    let refresh = refresh_token(3 * 3600);

    // azure.json as AKS writes it: client ID of the kubelet identity.
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::with_azure_json(
        &fake,
        &format!(
            r#"{{"cloud":"AzurePublicCloud","tenantId":"{TENANT}","aadClientId":"msi","aadClientSecret":"msi","useManagedIdentityExtension":true,"userAssignedIdentityID":"{CLIENT}","subscriptionId":"s","location":"eastus"}}"#
        ),
    );
    let out = run.image("myacr.azurecr.io/app", &[]);
    assert_eq!(auth(&out)[LOGIN].1, refresh);
    assert_imds(&fake, Some(("client_id", CLIENT)));
    assert_exchange(&fake, LOGIN, "imds");

    // An ARM resource ID instead.
    let fake = Fake::start(Script::ok(&refresh));
    let rid = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kubelet";
    let run = Run::with_azure_json(
        &fake,
        &format!(
            r#"{{"tenantId":"{TENANT}","useManagedIdentityExtension":true,"userAssignedIdentityID":"{rid}"}}"#
        ),
    );
    auth(&run.image("myacr.azurecr.io/app", &[]));
    assert_imds(&fake, Some(("msi_res_id", rid)));

    // No azure.json: AZURE_CLIENT_ID names the user-assigned identity.
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    auth(&run.image("myacr.azurecr.io/app", &[("AZURE_CLIENT_ID", CLIENT)]));
    assert_imds(&fake, Some(("client_id", CLIENT)));
}

#[test]
fn service_principal_secret_is_never_handed_out() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::with_azure_json(
        &fake,
        &format!(
            r#"{{"cloud":"AzurePublicCloud","tenantId":"{TENANT}","aadClientId":"{CLIENT}","aadClientSecret":"{SECRET}","useManagedIdentityExtension":false}}"#
        ),
    );
    let out = run.image("myacr.azurecr.io/app", &[]);
    let a = auth(&out);
    assert_eq!(a[LOGIN], (USERNAME.to_string(), refresh.clone()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(SECRET), "the upstream plugin's mistake");
    assert_no_secrets(&crate::common::stderr(&out), &[SECRET, &refresh]);

    let aad = assert_aad(&fake);
    assert_eq!(aad.form["client_secret"], SECRET);
    assert!(!aad.form.contains_key("client_assertion"));
    assert_exchange(&fake, LOGIN, "aad");

    // The same from the environment.
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    let out = run.image(
        "myacr.azurecr.io/app",
        &[
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    );
    assert_eq!(auth(&out)[LOGIN].1, refresh);
    assert_eq!(assert_aad(&fake).form["client_secret"], SECRET);
}

/// Checks the client assertion a certificate credential sent: header, claims, and the RS256
/// signature against the certificate's public key (with openssl).
fn assert_assertion(aad: &Seen, dir: &Path, cert_pem: &Path, token_url: &str) {
    assert_eq!(
        aad.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!aad.form.contains_key("client_secret"));
    let assertion = &aad.form["client_assertion"];
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    // x5t: base64url SHA-1 of the certificate's DER.
    let fp = String::from_utf8(openssl(
        &[
            "x509",
            "-in",
            cert_pem.to_str().expect("utf-8"),
            "-noout",
            "-fingerprint",
            "-sha1",
        ],
        dir,
    ))
    .expect("utf-8");
    let hex: String = fp
        .trim()
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .replace(':', "");
    let sha1: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(header["x5t"], URL_SAFE_NO_PAD.encode(&sha1));

    let c = claims(assertion);
    assert_eq!(c["aud"], token_url);
    assert_eq!(c["iss"], CLIENT);
    assert_eq!(c["sub"], CLIENT);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() == 36));
    let (iat, exp) = (
        c["iat"].as_u64().expect("iat"),
        c["exp"].as_u64().expect("exp"),
    );
    assert!(iat.abs_diff(now_s()) < 120 && exp > iat && exp - iat <= 3600);
    assert_eq!(c["nbf"], c["iat"]);

    // The signature verifies with the certificate's public key.
    std::fs::write(dir.join("input"), format!("{}.{}", parts[0], parts[1])).expect("write");
    std::fs::write(
        dir.join("sig"),
        URL_SAFE_NO_PAD.decode(parts[2]).expect("b64"),
    )
    .expect("write");
    let pubkey = openssl(
        &[
            "x509",
            "-in",
            cert_pem.to_str().expect("utf-8"),
            "-noout",
            "-pubkey",
        ],
        dir,
    );
    std::fs::write(dir.join("pub.pem"), pubkey).expect("write");
    let verified = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "input",
        ],
        dir,
    );
    assert!(String::from_utf8_lossy(&verified).contains("Verified OK"));
}

#[test]
fn a_service_principal_certificate_signs_an_rs256_assertion_for_the_token_url() {
    let refresh = refresh_token(3 * 3600);
    let sb = Sandbox::new();
    let dir = sb.tmp.path();
    // A PKCS#8 key with its self-signed certificate, and an unrelated CA certificate first
    // in the file: the thumbprint must be the one of the certificate matching the key.
    crate::common::tls::self_signed(dir, "sp", "kubelet-keyring-test");
    crate::common::tls::self_signed(dir, "other", "other");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect("read");
    let bundle = dir.join("sp.pem");
    std::fs::write(
        &bundle,
        format!("{}{}{}", read("other.crt"), read("sp.key"), read("sp.crt")),
    )
    .expect("write");
    let key_pem = read("sp.key");
    let key_body: String = key_pem.lines().nth(3).expect("a key line").to_string();

    let fake = Fake::start(Script::ok(&refresh));
    let azure = dir.join("azure.json");
    crate::common::write(
        &azure,
        &format!(
            r#"{{"tenantId":"{TENANT}","aadClientId":"{CLIENT}","aadClientCertPath":"{}"}}"#,
            bundle.display()
        ),
    );
    let run = Run::new(&fake.acr_section(&format!("  cloudConfig: {}\n", azure.display())));
    let out = run.image("myacr.azurecr.io/app", &[]);
    assert_eq!(auth(&out)[LOGIN].1, refresh);
    let aad = assert_aad(&fake);
    assert_assertion(
        &aad,
        dir,
        &dir.join("sp.crt"),
        &fake.url(&format!("/{TENANT}/oauth2/v2.0/token")),
    );
    assert_exchange(&fake, LOGIN, "aad");
    assert_no_secrets(
        &crate::common::stderr(&out),
        &[&aad.form["client_assertion"], &refresh, &key_body],
    );

    // A PKCS#1 ("RSA PRIVATE KEY") key from the environment, certificate first.
    openssl(&["genrsa", "-traditional", "-out", "rsa1.key", "2048"], dir);
    openssl(
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "rsa1.key",
            "-out",
            "rsa1.crt",
            "-subj",
            "/CN=pkcs1",
            "-days",
            "2",
        ],
        dir,
    );
    assert!(read("rsa1.key").contains("BEGIN RSA PRIVATE KEY"));
    let pkcs1 = dir.join("rsa1.pem");
    std::fs::write(&pkcs1, format!("{}{}", read("rsa1.crt"), read("rsa1.key"))).expect("write");
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    let out = run.image(
        "myacr.azurecr.io/app",
        &[
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_TENANT_ID", TENANT),
            (
                "AZURE_CLIENT_CERTIFICATE_PATH",
                pkcs1.to_str().expect("utf-8"),
            ),
        ],
    );
    assert_eq!(auth(&out)[LOGIN].1, refresh);
    assert_assertion(
        &assert_aad(&fake),
        dir,
        &dir.join("rsa1.crt"),
        &fake.url(&format!("/{TENANT}/oauth2/v2.0/token")),
    );

    // A PKCS#12 file is refused with the conversion command, before any request.
    openssl(
        &[
            "pkcs12",
            "-export",
            "-in",
            "sp.crt",
            "-inkey",
            "sp.key",
            "-out",
            "sp.pfx",
            "-passout",
            "pass:pfx-pass",
        ],
        dir,
    );
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    let out = run.image(
        "myacr.azurecr.io/app",
        &[
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_TENANT_ID", TENANT),
            (
                "AZURE_CLIENT_CERTIFICATE_PATH",
                dir.join("sp.pfx").to_str().expect("utf-8"),
            ),
        ],
    );
    assert_misconfigured(
        &out,
        &["client certificate", "PKCS#12", "openssl pkcs12"],
        &["pfx-pass"],
    );
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
}

#[test]
fn workload_identity_posts_the_projected_token_file_as_the_assertion() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    // The webhook injects these; the authority host comes from AZURE_AUTHORITY_HOST, which
    // must be https: a TLS front of the fake, trusted through SSL_CERT_FILE.
    let certs = tempfile::tempdir().expect("tempdir");
    crate::common::tls::ca(certs.path(), "ca");
    crate::common::tls::server_cert(certs.path(), "ca", "IP:127.0.0.1");
    let port = crate::common::tls::tls_front(
        &certs.path().join("srv.pem"),
        &certs.path().join("srv.key"),
        fake.host(),
    );
    let authority = format!("https://127.0.0.1:{port}/");
    let ca = certs.path().join("ca.pem");
    let run = Run::new(&format!(
        "acr:\n  endpoints:\n    imds: {}\n    registry: {}\n",
        fake.url("/nope"),
        fake.url("")
    ));
    let sa_token = jwt(
        r#"{"iss":"https://oidc.example/","sub":"system:serviceaccount:kube-system:kubelet-keyring","aud":["api://AzureADTokenExchange"]}"#,
    );
    let file = run.path("azure-identity-token");
    std::fs::write(&file, format!("{sa_token}\n")).expect("write");
    let out = run.image(
        "myacr.azurecr.io/app",
        &[
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_FEDERATED_TOKEN_FILE", file.to_str().expect("utf-8")),
            ("AZURE_AUTHORITY_HOST", &authority),
            ("SSL_CERT_FILE", ca.to_str().expect("utf-8")),
        ],
    );
    assert_eq!(auth(&out)[LOGIN].1, refresh);
    let aad = assert_aad(&fake);
    assert_eq!(
        aad.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(aad.form["client_assertion"], sa_token, "the file, trimmed");
    assert_exchange(&fake, LOGIN, "aad");
    assert_no_secrets(&crate::common::stderr(&out), &[&sa_token, &refresh]);
}

#[test]
fn a_service_account_token_from_the_kubelet_is_the_assertion_of_its_annotated_app() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    let sa_token =
        jwt(r#"{"sub":"system:serviceaccount:team:puller","aud":["api://AzureADTokenExchange"]}"#);
    let request = format!(
        r#"{{"kind":"CredentialProviderRequest","apiVersion":"{V1}","image":"myacr.azurecr.io/app","serviceAccountToken":"{sa_token}","serviceAccountAnnotations":{{"kubernetes.azure.com/acr-client-id":"{CLIENT}","kubernetes.azure.com/acr-tenant-id":"{TENANT}"}}}}"#
    );
    let out = run.run(&request, &[]);
    assert_eq!(auth(&out)[LOGIN].1, refresh);
    let aad = assert_aad(&fake);
    assert_eq!(aad.form["client_assertion"], sa_token);
    assert_exchange(&fake, LOGIN, "aad");
    assert_no_secrets(&crate::common::stderr(&out), &[&sa_token, &refresh]);

    // Without the client-id annotation, and nodeIdentityFallback: false, it fails clearly.
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section("  nodeIdentityFallback: false\n"));
    let request = format!(
        r#"{{"kind":"CredentialProviderRequest","apiVersion":"{V1}","image":"myacr.azurecr.io/app","serviceAccountToken":"{sa_token}"}}"#
    );
    assert_misconfigured(
        &run.run(&request, &[]),
        &["kubernetes.azure.com/acr-client-id", "nodeIdentityFallback"],
        &[&sa_token],
    );
    assert!(fake.seen().is_empty());
}

// ---------------------------------------------------------------------------------------
// Hosts, mirrors, expiry

#[test]
fn login_server_forms_and_mirrors_get_the_refresh_token_and_look_alikes_nothing() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(
        "  mirrors:\n    - source: mcr.microsoft.com\n      registry: myacr.azurecr.io\n    - source: mirror.local:5000\n      registry: myacr.azurecr.io\n",
    ));
    // DNL and regional endpoints are login servers of their own.
    for host in [
        "myacr-b5a3fdd8e8cbh0hc.azurecr.io",
        "myacr.eastus2.geo.azurecr.io",
    ] {
        let out = run.image(&format!("{host}/app"), &[]);
        assert_eq!(
            auth(&out),
            BTreeMap::from([(host.to_string(), (USERNAME.to_string(), refresh.clone()))])
        );
    }
    // A mirror: both the mirror host and the login server get the credential; the exchange
    // names the ACR.
    let before = fake.seen().len();
    let out = run.image("mcr.microsoft.com/oss/nginx/nginx", &[]);
    assert_eq!(
        auth(&out),
        BTreeMap::from([
            (
                "mcr.microsoft.com".to_string(),
                (USERNAME.to_string(), refresh.clone())
            ),
            (LOGIN.to_string(), (USERNAME.to_string(), refresh.clone())),
        ])
    );
    let ex = fake.seen()[before..]
        .iter()
        .find(|s| s.path == "/oauth2/exchange")
        .cloned()
        .expect("exchange");
    assert_eq!(ex.form["service"], LOGIN);
    let out = run.image("mirror.local:5000/team/app", &[]);
    assert!(auth(&out).contains_key("mirror.local:5000"));

    // Look-alikes get nothing, and cause no request at all.
    let before = fake.seen().len();
    for image in [
        "mcr.microsoft.com.evil.com/x",
        "evil.com/myacr.azurecr.io",
        "myacr.azurecr.io.evil.com/app",
        "mirror.local/app",
        "myacr.eastus.data.azurecr.io/app",
    ] {
        let out = run.image(image, &[]);
        assert!(auth(&out).is_empty(), "{image}");
    }
    assert_eq!(fake.seen().len(), before);
}

#[test]
fn lifetime_follows_the_refresh_token_exp() {
    // The provider reports exp - 5 min - up to 1 min of jitter; the binary's cache then takes
    // up to 10 % more off at random (src/cache/entry.rs), and that is what the kubelet gets.
    let expect = |remaining: u64| {
        let high = remaining - 300;
        let low = (remaining - 360) * 9 / 10 - 5;
        low..=high
    };
    // 75 minutes (reported for service-principal refresh tokens).
    let refresh = refresh_token(75 * 60);
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    let secs = cache_seconds(&run.image("myacr.azurecr.io/app", &[]));
    assert!(expect(75 * 60).contains(&secs), "{secs}");

    // 3 hours.
    let fake = Fake::start(Script::ok(&refresh_token(3 * 3600)));
    let run = Run::new(&fake.acr_section(""));
    let secs = cache_seconds(&run.image("myacr.azurecr.io/app", &[]));
    assert!(expect(3 * 3600).contains(&secs), "{secs}");

    // No exp, or an opaque token: the one-minute floor, never a made-up long life.
    for refresh in [jwt(r#"{"sub":"x"}"#), "opaque-refresh-token".to_string()] {
        let fake = Fake::start(Script::ok(&refresh));
        let run = Run::new(&fake.acr_section(""));
        let out = run.image("myacr.azurecr.io/app", &[]);
        assert_eq!(cache_seconds(&out), 60);
        assert_eq!(auth(&out)[LOGIN].1, refresh);
        assert_no_secrets(&crate::common::stderr(&out), &[&refresh]);
    }
}

// ---------------------------------------------------------------------------------------
// Failures: exit 1, one line naming the stage, no secret

#[test]
fn failures_name_the_stage_and_leak_nothing() {
    let refresh = refresh_token(3 * 3600);
    let imds_token = aad_token("imds");
    let aad_tok = aad_token("aad");
    let secrets = [&refresh[..], &imds_token, &aad_tok, SECRET];
    let sp_env = [
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_SECRET", SECRET),
    ];

    // IMDS: the identity is not assigned.
    let mut s = Script::ok(&refresh);
    s.imds = (
        400,
        r#"{"error":"invalid_request","error_description":"Identity not found"}"#.into(),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[("AZURE_CLIENT_ID", CLIENT)]),
        &[
            "acr: myacr.azurecr.io: IMDS",
            "HTTP 400 invalid_request",
            "assign",
        ],
        &secrets,
    );

    // AAD: a wrong secret; the error body even quotes it, the message must not.
    let mut s = Script::ok(&refresh);
    s.aad = (
        401,
        format!(
            r#"{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: {SECRET}","error_codes":[7000215]}}"#
        ),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &sp_env),
        &[
            "AAD token",
            "HTTP 401 invalid_client AADSTS7000215",
            "client secret",
        ],
        &secrets,
    );

    // /v2/ without a challenge.
    let mut s = Script::ok(&refresh);
    s.challenge = (200, None);
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["/v2/ challenge", "HTTP 200", "expected 401"],
        &secrets,
    );

    // A challenge whose realm points elsewhere: the token is not sent there.
    let mut s = Script::ok(&refresh);
    s.challenge = (
        401,
        Some(
            r#"Bearer realm="https://evil.example/oauth2/token",service="myacr.azurecr.io""#.into(),
        ),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["/v2/ challenge", "evil.example", "refusing"],
        &secrets,
    );
    assert!(fake.seen().iter().all(|r| r.path != "/oauth2/exchange"));

    // The exchange is refused (no AcrPull).
    let mut s = Script::ok(&refresh);
    s.exchange = (
        401,
        format!(
            r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"token {aad_tok} lacks access"}}]}}"#
        ),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &sp_env),
        &["ACR token exchange", "HTTP 401 UNAUTHORIZED", "AcrPull"],
        &secrets,
    );

    // The exchange keeps failing with 503: retried, then reported.
    let mut s = Script::ok(&refresh);
    s.exchange = (503, "{}".into());
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    let started = Instant::now();
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["ACR token exchange", "HTTP 503"],
        &secrets,
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let exchanges = fake
        .seen()
        .iter()
        .filter(|r| r.path == "/oauth2/exchange")
        .count();
    assert_eq!(exchanges, 3, "three attempts");

    // A 200 exchange without a refresh token.
    let mut s = Script::ok(&refresh);
    s.exchange = (200, r#"{"access_token":"not-what-we-asked"}"#.into());
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["ACR token exchange", "no refresh_token"],
        &["not-what-we-asked"],
    );

    // IMDS not there at all (nothing listens): retried, then a hint about IMDS.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let run = Run::new(&format!(
        "acr:\n  endpoints:\n    imds: http://127.0.0.1:{port}/metadata/identity/oauth2/token\n"
    ));
    let started = Instant::now();
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["IMDS", "after 3 attempt(s)", "managed identity"],
        &secrets,
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // Local set-up: a missing azure.json, and one naming no credential.
    let run = Run::new("acr:\n  cloudConfig: /nonexistent/azure.json\n");
    assert_misconfigured(
        &run.image("myacr.azurecr.io/app", &[]),
        &[
            "cannot read azure.json /nonexistent/azure.json",
            "acr.cloudConfig",
        ],
        &secrets,
    );
    let azure = run.path("azure.json");
    crate::common::write(
        &azure,
        &format!(r#"{{"tenantId":"{TENANT}","aadClientId":"{CLIENT}"}}"#),
    );
    let run = Run::new(&format!("acr:\n  cloudConfig: {}\n", azure.display()));
    assert_misconfigured(
        &run.image("myacr.azurecr.io/app", &[]),
        &["azure.json", "names no credential"],
        &secrets,
    );
    // A half-set environment.
    let run = Run::new("");
    assert_misconfigured(
        &run.image(
            "myacr.azurecr.io/app",
            &[("AZURE_CLIENT_SECRET", SECRET), ("AZURE_CLIENT_ID", CLIENT)],
        ),
        &["AZURE_TENANT_ID"],
        &secrets,
    );
}

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

// ---------------------------------------------------------------------------------------
// The example config

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

// ---------------------------------------------------------------------------------------
// KEP-4412: service-account tokens from the kubelet, further

const ANN_CLIENT: &str = "kubernetes.azure.com/acr-client-id";
const ANN_TENANT: &str = "kubernetes.azure.com/acr-tenant-id";
const AUDIENCE: &str = "api://AzureADTokenExchange";

#[test]
fn a_token_without_the_client_id_annotation_uses_the_node_identity() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    // nodeIdentityFallback is on by default.
    let run = Run::new(&fake.acr_section(""));
    let token = crate::common::sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let out = run.cached(
        &crate::common::sa_request("myacr.azurecr.io/app", &token, &[]),
        &["-vvv"],
    );
    assert_eq!(auth(&out)[LOGIN].1, refresh);
    // Managed identity (IMDS), no client assertion anywhere.
    assert_imds(&fake, None);
    assert!(fake
        .seen()
        .iter()
        .all(|s| !s.path.ends_with("/oauth2/v2.0/token")));
    assert_exchange(&fake, LOGIN, "imds");
    crate::common::assert_token_not_shown(&token, &out, Some(&run.sb.cache));
}

#[test]
fn the_token_is_the_assertion_and_goes_nowhere_else() {
    let fake = Fake::start(Script::per_client());
    let run = Run::new(&fake.acr_section(""));
    let token = crate::common::sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = crate::common::sa_request(
        "myacr.azurecr.io/app",
        &token,
        &[(ANN_CLIENT, CLIENT), (ANN_TENANT, TENANT)],
    );
    let out = run.cached(&req, &["-vvv"]);
    let a = auth(&out);
    assert_eq!(claims(&a[LOGIN].1)["for"], format!("aad-{CLIENT}"));
    let aad = assert_aad(&fake);
    assert_eq!(aad.form["client_assertion"], token);
    assert_eq!(
        aad.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    crate::common::assert_token_not_shown(&token, &out, Some(&run.sb.cache));
}

#[test]
fn service_accounts_have_their_own_cache_entries() {
    let fake = Fake::start(Script::per_client());
    let run = Run::new(&fake.acr_section(""));
    let (client_a, client_b) = (CLIENT, "99999999-8888-7777-6666-555555555555");
    let get = |token: &str, client: &str| {
        let req = crate::common::sa_request(
            "myacr.azurecr.io/app",
            token,
            &[(ANN_CLIENT, client), (ANN_TENANT, TENANT)],
        );
        let out = run.cached(&req, &[]);
        crate::common::assert_token_nowhere(
            token,
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
            Some(&run.sb.cache),
        );
        claims(&auth(&out)[LOGIN].1)["for"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let aad_calls = || {
        fake.seen()
            .iter()
            .filter(|s| s.path.ends_with("/oauth2/v2.0/token"))
            .map(|s| s.form["client_id"].clone())
            .collect::<Vec<_>>()
    };
    let a1 = crate::common::sa_token(AUDIENCE, "team", "a", "uid-a", 1);
    let b1 = crate::common::sa_token(AUDIENCE, "team", "b", "uid-b", 2);
    assert_eq!(get(&a1, client_a), format!("aad-{client_a}"));
    assert_eq!(get(&b1, client_b), format!("aad-{client_b}"));
    assert_eq!(aad_calls(), [client_a, client_b]);
    // Fresh tokens of both: from the cache, each its own credential.
    let a2 = crate::common::sa_token(AUDIENCE, "team", "a", "uid-a", 3);
    let b2 = crate::common::sa_token(AUDIENCE, "team", "b", "uid-b", 4);
    assert_eq!(get(&a2, client_a), format!("aad-{client_a}"));
    assert_eq!(get(&b2, client_b), format!("aad-{client_b}"));
    assert_eq!(
        aad_calls().len(),
        2,
        "a fresh token of a known service account missed"
    );
    // A third service account with the same annotations as a: its own exchange all the same.
    let c1 = crate::common::sa_token(AUDIENCE, "team", "c", "uid-c", 5);
    assert_eq!(get(&c1, client_a), format!("aad-{client_a}"));
    assert_eq!(aad_calls().len(), 3);
    // And the node (no token) has its own entry: managed identity.
    let out = run.cached(&crate::common::request(V1, "myacr.azurecr.io/app"), &[]);
    assert_eq!(claims(&auth(&out)[LOGIN].1)["for"], "imds");
}

/// Registry and Entra ID calls go through `HTTPS_PROXY`; IMDS never does, even with
/// `HTTP_PROXY` set (it is link-local plain HTTP).
#[test]
fn the_registry_is_reached_through_https_proxy_and_imds_directly() {
    let fake = Fake::start(Script::ok(&refresh_token(3600)));
    // Only IMDS is faked: the registry is the real name, which only the proxy may dial.
    let run = Run::new(&format!(
        "acr:\n  endpoints:\n    imds: {}\n",
        fake.url("/metadata/identity/oauth2/token")
    ));
    let (port, seen) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let out = run.image(
        "myacr.azurecr.io/app",
        &[("HTTPS_PROXY", &proxy), ("http_proxy", &proxy)],
    );
    assert_failure(
        &out,
        &["/v2/ challenge", "https://myacr.azurecr.io/v2/"],
        &[&aad_token("imds")],
    );
    let head = crate::common::proxy::first_connect(&seen, "myacr.azurecr.io:443");
    assert!(!head.contains("/metadata"), "{head}");
    assert_imds(&fake, None);
}
