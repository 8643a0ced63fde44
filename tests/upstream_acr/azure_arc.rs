//! Azure Arc: the managed identity from the Arc agent's key-file challenge; an agent without
//! the identity echo, and App Service's managed identity, refused.

use super::*;

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
