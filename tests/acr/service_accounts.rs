//! Workload identity (the projected token file) and KEP-4412 service-account tokens from the
//! kubelet, as the assertion of the app their annotations name.

use super::*;

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
