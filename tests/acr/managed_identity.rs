//! Managed identities: system-assigned through IMDS, Azure Arc's, user-assigned from
//! azure.json and the environment.

use super::*;

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
