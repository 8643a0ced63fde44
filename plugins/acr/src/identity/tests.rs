//! Unit tests of the identity selection.

use std::collections::BTreeMap;

use super::*;
use crate::config::Config;

/// [`super::select`] for an image reached directly, not through a mirror.
fn select(
    settings: &Settings,
    env: Env<'_>,
    query: &Query,
    login_server: &str,
) -> Result<Identity, Error> {
    super::select(settings, env, query, login_server, false)
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned().filter(|v| !v.is_empty())
}

fn query() -> Query {
    Query::new(keyring_api::ImageName::parse("myacr.azurecr.io/app").unwrap())
}

fn settings() -> Settings {
    Config::default().validate().unwrap()
}

const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const C: &str = "11111111-2222-3333-4444-555555555555";

#[test]
fn the_environment_names_a_service_principal_workload_identity_or_managed_identity() {
    let s = settings();
    let q = query();
    let id = select(&s, &env_of(&[]), &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::ManagedIdentity(None)));

    let id = select(
        &s,
        &env_of(&[("AZURE_CLIENT_ID", C)]),
        &q,
        "myacr.azurecr.io",
    )
    .unwrap();
    assert!(
        matches!(id.credential, Credential::ManagedIdentity(Some(MsiId::ClientId(ref c))) if c == C)
    );

    let e = env_of(&[
        ("AZURE_CLIENT_ID", C),
        ("AZURE_TENANT_ID", T),
        ("AZURE_CLIENT_SECRET", "hunter2"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
    ]);
    let id = select(&s, &e, &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::ClientSecret(_)));
    assert_eq!(
        id.authority.as_deref(),
        Some("https://login.microsoftonline.com")
    );
    assert!(!format!("{id:?}").contains("hunter2"));
    assert!(!id.describe().contains("hunter2"));

    let e = env_of(&[
        ("AZURE_CLIENT_ID", C),
        ("AZURE_TENANT_ID", T),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
    ]);
    let id = select(&s, &e, &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::FederatedTokenFile(_)));
    assert_eq!(
        id.authority.as_deref(),
        Some("https://login.microsoftonline.us")
    );

    let e = env_of(&[("AZURE_CLIENT_SECRET", "hunter2"), ("AZURE_CLIENT_ID", C)]);
    let err = select(&s, &e, &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AZURE_TENANT_ID") && !err.contains("hunter2"),
        "{err}"
    );

    let e = env_of(&[("AZURE_CLIENT_ID", "x/../y")]);
    assert!(select(&s, &e, &q, "myacr.azurecr.io").is_err());
}

#[test]
fn the_authority_host_follows_the_setting_the_variable_then_the_cloud() {
    let s = settings();
    let none = env_of(&[]);
    let a = |cloud: Option<&str>, login: &str| authority_host(&s, &none, cloud, login);
    assert_eq!(
        a(None, "x.azurecr.cn").unwrap(),
        "https://login.chinacloudapi.cn"
    );
    assert_eq!(
        a(None, "x.azurecr.us").unwrap(),
        "https://login.microsoftonline.us"
    );
    assert_eq!(
        a(None, "x.azurecr.io").unwrap(),
        "https://login.microsoftonline.com"
    );
    assert_eq!(
        a(Some("AzureChinaCloud"), "x.azurecr.io").unwrap(),
        "https://login.chinacloudapi.cn"
    );
    assert_eq!(
        a(Some("AzureUSGovernmentCloud"), "x.azurecr.io").unwrap(),
        "https://login.microsoftonline.us"
    );
    assert!(a(Some("AzureStackCloud"), "x.azurecr.io")
        .unwrap_err()
        .to_string()
        .contains("authorityHost"));
    let mut s2 = settings();
    s2.cloud = Some(Cloud::China);
    assert_eq!(
        authority_host(&s2, &none, Some("AzurePublicCloud"), "x.azurecr.io").unwrap(),
        "https://login.chinacloudapi.cn"
    );
    s2.authority_host = Some("http://127.0.0.1:9".into());
    assert_eq!(
        authority_host(&s2, &none, None, "x.azurecr.io").unwrap(),
        "http://127.0.0.1:9"
    );
}

#[test]
fn an_authority_host_from_the_environment_must_be_https() {
    let s = settings();
    for clear in [
        "http://127.0.0.1:9/",
        "http://login.example.com",
        "login.example.com",
    ] {
        let env = env_of(&[("AZURE_AUTHORITY_HOST", clear)]);
        let e = authority_host(&s, &env, None, "x.azurecr.io").unwrap_err();
        assert_eq!(e.kind(), keyring_api::ErrorKind::Misconfigured);
        assert!(
            e.to_string()
                .contains("AZURE_AUTHORITY_HOST is not an https:// URL"),
            "{clear}: {e}"
        );
    }
    let env = env_of(&[("AZURE_AUTHORITY_HOST", "HTTPS://login.example.com/")]);
    assert_eq!(
        authority_host(&s, &env, None, "x.azurecr.io").unwrap(),
        "https://login.example.com"
    );
    // Managed identity asks no authority: the variable is not read, so not refused.
    let env = env_of(&[("AZURE_AUTHORITY_HOST", "http://login.example.com")]);
    let id = select(&s, &env, &query(), "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::ManagedIdentity(None)));
}

#[test]
fn a_service_account_token_is_the_assertion_of_the_annotated_application() {
    let s = settings();
    let mut q = query();
    q.service_account_token = Some(Secret::new("sa.token.value".into()));
    // No annotation: node identity (fallback on by default).
    let id = select(&s, &env_of(&[]), &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::ManagedIdentity(None)));
    // Fallback off: a clear error.
    let mut strict = settings();
    strict.node_identity_fallback = false;
    let err = select(&strict, &env_of(&[]), &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(ANNOTATION_CLIENT_ID) && !err.contains("sa.token"),
        "{err}"
    );
    // Client id annotation, tenant from the node.
    q.service_account_annotations
        .insert(ANNOTATION_CLIENT_ID.into(), C.into());
    let err = select(&s, &env_of(&[]), &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(err.contains(ANNOTATION_TENANT_ID), "{err}");
    let id = select(
        &s,
        &env_of(&[("AZURE_TENANT_ID", T)]),
        &q,
        "myacr.azurecr.io",
    )
    .unwrap();
    assert!(matches!(id.credential, Credential::ServiceAccountToken(_)));
    assert_eq!(id.tenant.as_deref(), Some(T));
    q.service_account_annotations.insert(
        ANNOTATION_TENANT_ID.into(),
        "contoso.onmicrosoft.com".into(),
    );
    let id = select(
        &s,
        &env_of(&[("AZURE_TENANT_ID", T)]),
        &q,
        "myacr.azurecr.cn",
    )
    .unwrap();
    assert_eq!(id.tenant.as_deref(), Some("contoso.onmicrosoft.com"));
    assert_eq!(
        id.authority.as_deref(),
        Some("https://login.chinacloudapi.cn")
    );
    assert_eq!(id.client_id, C);
}

#[test]
fn azure_json_names_managed_identity_a_service_principal_or_workload_identity() {
    let dir = tempfile::tempdir().unwrap();
    let write = |json: &str| {
        let p = dir.path().join("azure.json");
        std::fs::write(&p, json).unwrap();
        let mut s = settings();
        s.cloud_config = Some(p);
        s
    };
    let q = query();
    let none = env_of(&[]);
    let s = write(&format!(
        r#"{{"cloud":"AzurePublicCloud","tenantId":"{T}","aadClientId":"msi","aadClientSecret":"msi","useManagedIdentityExtension":true,"userAssignedIdentityID":"{C}"}}"#
    ));
    let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
    assert!(
        matches!(id.credential, Credential::ManagedIdentity(Some(MsiId::ClientId(ref c))) if c == C)
    );
    assert!(id.describe().contains("azure.json"));

    let s = write(
        r#"{"useManagedIdentityExtension":true,"userAssignedIdentityID":"/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"}"#,
    );
    let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(
        id.credential,
        Credential::ManagedIdentity(Some(MsiId::ResourceId(_)))
    ));

    let s = write(&format!(
        r#"{{"cloud":"AzureChinaCloud","tenantId":"{T}","aadClientId":"{C}","aadClientSecret":"hunter2"}}"#
    ));
    let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::ClientSecret(_)));
    assert_eq!(
        id.authority.as_deref(),
        Some("https://login.chinacloudapi.cn")
    );

    let s = write(&format!(
        r#"{{"tenantId":"{T}","aadClientId":"{C}","aadClientCertPath":"/etc/kubernetes/sp.pem"}}"#
    ));
    let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::Certificate(_)));

    let s = write(&format!(
        r#"{{"tenantId":"{T}","aadClientId":"{C}","useFederatedWorkloadIdentityExtension":true,"aadFederatedTokenFile":"/t"}}"#
    ));
    let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::FederatedTokenFile(_)));

    for (json, needle) in [
        (
            format!(r#"{{"tenantId":"{T}","aadClientId":"{C}"}}"#),
            "names no credential",
        ),
        (
            format!(r#"{{"aadClientId":"{C}","aadClientSecret":"hunter2"}}"#),
            "no tenantId",
        ),
        (
            r#"{"aadClientSecret": 12345}"#.to_string(),
            "not valid JSON",
        ),
    ] {
        let s = write(&json);
        let err = select(&s, &none, &q, "myacr.azurecr.io")
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("12345"), "{err}");
    }

    let mut s = settings();
    s.cloud_config = Some(dir.path().join("missing.json"));
    let err = select(&s, &none, &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.json") && err.contains("acr.cloudConfig"),
        "{err}"
    );
}

#[test]
fn under_the_upstream_name_the_cloud_config_alone_names_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = |json: Option<&str>| {
        let mut s = settings();
        s.as_upstream = true;
        s.node_identity_fallback = false;
        if let Some(json) = json {
            let p = dir.path().join("azure.json");
            std::fs::write(&p, json).unwrap();
            s.cloud_config = Some(p);
        }
        s
    };
    let q = query();
    let vars = env_of(&[
        ("AZURE_CLIENT_ID", C),
        ("AZURE_TENANT_ID", T),
        ("AZURE_CLIENT_SECRET", "hunter2"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ("AZURE_AUTHORITY_HOST", "https://login.example.com"),
    ]);
    // No cloud config: an error naming the argument, not the AZURE_* identity.
    let err = select(&upstream(None), &vars, &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cloud config") && !err.contains("hunter2"),
        "{err}"
    );
    // A system-assigned identity stays system-assigned whatever AZURE_CLIENT_ID says.
    let s = upstream(Some(r#"{"useManagedIdentityExtension":true}"#));
    let id = select(&s, &vars, &q, "myacr.azurecr.io").unwrap();
    assert!(matches!(id.credential, Credential::ManagedIdentity(None)));
    assert_eq!(id.cloud_config_tenant, None, "no tenantId: none named");
    // AZURE_TENANT_ID does not complete a service principal; AZURE_FEDERATED_TOKEN_FILE
    // does not give workload identity its file; AZURE_AUTHORITY_HOST moves nothing.
    let s = upstream(Some(&format!(
        r#"{{"aadClientId":"{C}","aadClientSecret":"s"}}"#
    )));
    let err = select(&s, &vars, &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no tenantId"), "{err}");
    let s = upstream(Some(&format!(
        r#"{{"tenantId":"{T}","aadClientId":"{C}","useFederatedWorkloadIdentityExtension":true}}"#
    )));
    let err = select(&s, &vars, &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(err.contains("aadFederatedTokenFile"), "{err}");
    let s = upstream(Some(&format!(
        r#"{{"tenantId":"{T}","aadClientId":"{C}","aadClientSecret":"s"}}"#
    )));
    let id = select(&s, &vars, &q, "myacr.azurecr.io").unwrap();
    assert_eq!(
        id.authority.as_deref(),
        Some("https://login.microsoftonline.com")
    );
    assert_eq!(id.cloud_config_tenant.as_deref(), Some(T));
    // A pod's token needs both annotations; the node's tenant does not stand in.
    let mut q = query();
    q.service_account_token = Some(Secret::new("sa.token.value".into()));
    q.service_account_annotations
        .insert(ANNOTATION_CLIENT_ID.into(), C.into());
    let err = select(&s, &vars, &q, "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(ANNOTATION_TENANT_ID) && !err.contains("sa.token"),
        "{err}"
    );
    q.service_account_annotations.insert(
        ANNOTATION_TENANT_ID.into(),
        "contoso.onmicrosoft.com".into(),
    );
    let id = select(&s, &vars, &q, "myacr.azurecr.io").unwrap();
    assert_eq!(id.tenant.as_deref(), Some("contoso.onmicrosoft.com"));
    assert_eq!(
        id.cloud_config_tenant.as_deref(),
        Some(T),
        "the exchange's tenant"
    );
}

#[test]
fn a_resource_manager_endpoint_needs_the_authority_given_unless_it_is_a_built_in_clouds() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("azure.json");
    let with = |rme: &str, authority: Option<&str>| {
        std::fs::write(
            &p,
            format!(
                r#"{{"cloud":"AzureStackCloud","tenantId":"{T}","aadClientId":"{C}","aadClientSecret":"hunter2","resourceManagerEndpoint":"{rme}","cloudConfigType":"file"}}"#
            ),
        )
        .unwrap();
        let mut s = settings();
        s.cloud_config = Some(p.clone());
        s.authority_host = authority.map(String::from);
        select(&s, &env_of(&[]), &query(), "myacr.azurecr.io").map_err(|e| e.to_string())
    };
    let err = with(
        "https://user:pw@management.local.azurestack.external/",
        None,
    )
    .unwrap_err();
    assert!(
        err.contains("resourceManagerEndpoint https://management.local.azurestack.external/")
            && err.contains("AZURE_ENVIRONMENT_FILEPATH")
            && !err.contains("pw")
            && !err.contains("hunter2"),
        "{err}"
    );
    let id = with(
        "https://management.local.azurestack.external/",
        Some("https://login.local.example"),
    )
    .unwrap();
    assert_eq!(id.authority.as_deref(), Some("https://login.local.example"));
    // A built-in cloud's ARM endpoint is that cloud (AzureStackCloud without its file is
    // still refused, for the cloud name).
    let err = with("https://management.azure.com/", None).unwrap_err();
    assert!(!err.contains("resourceManagerEndpoint"), "{err}");
    assert!(err.contains("AzureStackCloud"), "{err}");
    // cloudConfigType has no effect but must be a string, as upstream.
    std::fs::write(
        &p,
        r#"{"useManagedIdentityExtension":true,"cloudConfigType":5}"#,
    )
    .unwrap();
    let mut s = settings();
    s.cloud_config = Some(p.clone());
    let err = select(&s, &env_of(&[]), &query(), "myacr.azurecr.io")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not valid JSON"), "{err}");
}
