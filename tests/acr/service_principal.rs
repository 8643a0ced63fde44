//! Service principals: a client secret (never handed out) and a certificate (an RS256
//! assertion for the token URL).

use super::*;

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
