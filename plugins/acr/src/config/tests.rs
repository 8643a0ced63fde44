//! Unit tests of the `acr:` section's checks.

use super::*;

fn parse_yaml_like(json: &str) -> Config {
    serde_json::from_str(json).unwrap()
}

#[test]
fn an_empty_section_gives_imds_node_fallback_and_no_overrides() {
    let s = Config::default().validate().unwrap();
    assert_eq!(s.imds, IMDS_URL);
    assert!(s.node_identity_fallback);
    assert!(s.mirrors.is_empty());
    assert_eq!(s.authority_host, None);
    assert_eq!(s.registry_base, None);
}

#[test]
fn a_full_section_is_lower_cased_and_resolved() {
    let c = parse_yaml_like(
        r#"{"cloudConfig": "/etc/kubernetes/azure.json", "cloud": "AzureChinaCloud",
            "mirrors": [{"source": "MCR.microsoft.com", "registry": "MyAcr.azurecr.cn"},
                        {"source": "mirror.local:5000", "registry": "x.contoso.scloud"}],
            "registrySuffixes": [".Contoso.scloud"],
            "nodeIdentityFallback": false,
            "endpoints": {"imds": "http://127.0.0.1:1/metadata/identity/oauth2/token",
                          "authorityHost": "http://127.0.0.1:2/",
                          "registry": "http://127.0.0.1:3"}}"#,
    );
    let s = c.validate().unwrap();
    assert_eq!(s.cloud, Some(Cloud::China));
    assert_eq!(s.registry_suffixes, ["contoso.scloud"]);
    assert_eq!(
        s.mirrors,
        [
            Mirror {
                source: "mcr.microsoft.com".into(),
                registry: "myacr.azurecr.cn".into()
            },
            Mirror {
                source: "mirror.local:5000".into(),
                registry: "x.contoso.scloud".into()
            }
        ]
    );
    assert!(!s.node_identity_fallback);
    assert_eq!(s.imds, "http://127.0.0.1:1/metadata/identity/oauth2/token");
    assert_eq!(s.authority_host.as_deref(), Some("http://127.0.0.1:2"));
    assert_eq!(
        s.registry_base.unwrap().as_url(),
        "http://127.0.0.1:3".to_string()
    );
}

#[test]
fn unknown_fields_are_refused() {
    let e = serde_json::from_str::<Config>(r#"{"mirror": []}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `mirror`"), "{e}");
    let e = serde_json::from_str::<Config>(r#"{"endpoints": {"aad": "x"}}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `aad`"), "{e}");
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (r#"{"cloud": "Mars"}"#, "acr.cloud"),
        (r#"{"cloudConfig": ""}"#, "acr.cloudConfig"),
        (
            r#"{"mirrors": [{"source": "https://mcr.microsoft.com", "registry": "a.azurecr.io"}]}"#,
            "acr.mirrors[0].source",
        ),
        (
            r#"{"mirrors": [{"source": "mcr.microsoft.com/x", "registry": "a.azurecr.io"}]}"#,
            "acr.mirrors[0].source",
        ),
        (
            r#"{"mirrors": [{"source": "mcr.microsoft.com", "registry": "evil.com"}]}"#,
            "acr.mirrors[0].registry",
        ),
        (
            r#"{"mirrors": [{"source": "a.io", "registry": "a.azurecr.io"},
                            {"source": "A.io", "registry": "b.azurecr.io"}]}"#,
            "acr.mirrors[1].source",
        ),
        (r#"{"registrySuffixes": ["io"]}"#, "acr.registrySuffixes[0]"),
        (
            r#"{"endpoints": {"imds": "ftp://x"}}"#,
            "acr.endpoints.imds",
        ),
        (
            r#"{"endpoints": {"imds": "http://x/t?a=b"}}"#,
            "acr.endpoints.imds",
        ),
        (
            r#"{"endpoints": {"authorityHost": "login"}}"#,
            "acr.endpoints.authorityHost",
        ),
        (
            r#"{"endpoints": {"registry": "http://x/v2"}}"#,
            "acr.endpoints.registry",
        ),
        (
            r#"{"endpoints": {"registry": "http://u:p@x"}}"#,
            "acr.endpoints.registry",
        ),
        (
            r#"{"endpoints": {"registry": "http://x:port"}}"#,
            "acr.endpoints.registry",
        ),
    ];
    for (json, field) in cases {
        let e = parse_yaml_like(json).validate().unwrap_err().to_string();
        assert!(e.starts_with(&format!("{field}:")), "{json}: {e}");
    }
}

#[test]
fn clouds_parse_by_name_and_follow_the_login_servers_suffix() {
    assert_eq!(Cloud::parse("AzurePublicCloud"), Some(Cloud::Public));
    assert_eq!(Cloud::parse("azurechinacloud"), Some(Cloud::China));
    assert_eq!(
        Cloud::parse("AzureUSGovernmentCloud"),
        Some(Cloud::UsGovernment)
    );
    assert_eq!(Cloud::parse("AzureStackCloud"), None);
    assert_eq!(
        Cloud::China.authority_host(),
        "https://login.chinacloudapi.cn"
    );
    assert_eq!(
        Cloud::UsGovernment.authority_host(),
        "https://login.microsoftonline.us"
    );
    assert_eq!(Cloud::of_login_server("a.azurecr.cn"), Some(Cloud::China));
    assert_eq!(
        Cloud::of_login_server("a.eastus.geo.azurecr.us"),
        Some(Cloud::UsGovernment)
    );
    assert_eq!(Cloud::of_login_server("a.azurecr.io"), Some(Cloud::Public));
    assert_eq!(Cloud::of_login_server("a.contoso.scloud"), None);
    for c in [
        Cloud::Public,
        Cloud::China,
        Cloud::UsGovernment,
        Cloud::Germany,
    ] {
        assert_eq!(Cloud::parse(c.name()), Some(c));
    }
}

#[test]
fn urls_split_into_scheme_authority_and_rest_without_user_info() {
    assert_eq!(
        split_url("HTTPS://Login.example:8443/x/"),
        Some(("https".into(), "Login.example:8443".into(), "/x/".into()))
    );
    assert_eq!(
        split_url("http://[::1]:80"),
        Some(("http".into(), "[::1]:80".into(), "".into()))
    );
    assert_eq!(split_url("http://"), None);
    assert_eq!(split_url("file:///x"), None);
    assert_eq!(
        normalize_authority_host("https://login.microsoftonline.com/"),
        Some("https://login.microsoftonline.com".into())
    );
}

#[test]
fn an_endpoint_that_receives_a_secret_is_https_or_http_to_loopback() {
    let endpoints = |field: &str, url: &str| {
        let ib = r#""identityBinding": {"sniName": "ib.local", "apiServer": "10.0.0.1"},"#;
        parse_yaml_like(&format!(r#"{{{ib} "endpoints": {{"{field}": "{url}"}}}}"#)).validate()
    };
    for field in ["authorityHost", "registry", "identityBinding"] {
        for ok in [
            "https://login.example.com",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080",
            "http://LocalHost:1",
        ] {
            assert!(endpoints(field, ok).is_ok(), "{field} {ok}");
        }
        for clear in [
            "http://login.example.com",
            "http://0.0.0.0:8080",
            "http://10.0.0.1",
            "http://[::]:80",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let e = endpoints(field, clear).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("acr.endpoints.{field}:"))
                    && e.contains("in clear")
                    && e.contains("https://"),
                "{field} {clear}: {e}"
            );
        }
    }
    // IMDS is link-local plain HTTP by design, and receives no secret.
    assert!(endpoints(
        "imds",
        "http://169.254.169.254/metadata/identity/oauth2/token"
    )
    .is_ok());
}
