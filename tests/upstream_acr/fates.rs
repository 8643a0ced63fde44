//! The fates of the variables and flags no shipped config passes; the `AZURE_*` identity
//! variables, which do not change the identity under the upstream name; and the cloud
//! config's `aadClientCertPath` and workload identity fields, which upstream ignores and
//! which authenticate `aadClientId` here (a kept difference).

use super::*;

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
    // HTTPS_PROXY (honoured) goes through a real CONNECT tunnel in tests/acr/hosts.rs
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

/// Issue 22 point 20, a kept difference: an azure.json `aadClientCertPath`, which upstream
/// ignores (handing the runtime `aadClientId` with an empty secret), authenticates that same
/// application here: the certificate signs an RS256 client assertion of `aadClientId` for
/// the cloud config's tenant, the Entra token is exchanged at ACR in that tenant, and
/// neither IMDS nor a secret takes part.
#[test]
fn an_azure_json_aad_client_cert_path_authenticates_aad_client_id_under_the_upstream_name() {
    let entry = entry("aks-agentbaker.yaml");
    let refresh = refresh_token(3 * 3600);
    let certs = tempfile::tempdir().expect("tempdir");
    let dir = certs.path();
    crate::common::tls::self_signed(dir, "sp", "kubelet-keyring-upstream-test");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect("read");
    let bundle = dir.join("sp.pem");
    std::fs::write(&bundle, format!("{}{}", read("sp.key"), read("sp.crt"))).expect("write");
    let azure_json = format!(
        r#"{{"cloud":"AzurePublicCloud","tenantId":"{TENANT}","aadClientId":"{CLIENT}","aadClientCertPath":"{}","useManagedIdentityExtension":false}}"#,
        bundle.display()
    );
    let node = Node::new(
        &entry,
        Script::ok_for("myacr.azurecr.io", &refresh),
        &azure_json,
        "",
        true,
    );
    let out = node.run(&entry, &entry.request("myacr.azurecr.io/app"), &[]);
    assert_eq!(
        auth(&entry, &out),
        acr_answer([("myacr.azurecr.io".into(), creds(&refresh))])
    );
    let aad = node
        .fake
        .one("POST", &format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(aad.form["grant_type"], "client_credentials");
    assert_eq!(aad.form["client_id"], CLIENT);
    crate::common::azure::assert_assertion(
        &aad,
        dir,
        &dir.join("sp.crt"),
        &node.fake.url(&format!("/{TENANT}/oauth2/v2.0/token")),
    );
    assert!(imds_calls(&node.fake).is_empty());
    assert_exchanged(
        &node.fake,
        "myacr.azurecr.io",
        "aad",
        entry.label().as_str(),
    );
    assert_eq!(
        node.fake.one("POST", "/oauth2/exchange").form["tenant"],
        TENANT
    );
    let err = crate::common::stderr(&out);
    assert!(
        !err.contains(&aad.form["client_assertion"]) && !err.contains(&refresh),
        "{err}"
    );
}

/// Issue 22 point 20, a kept difference: an azure.json with
/// `useFederatedWorkloadIdentityExtension` and `aadFederatedTokenFile`, which upstream
/// ignores (handing the runtime `aadClientId` with the secret), authenticates that same
/// application here: the file's token (trimmed) is the client assertion of `aadClientId` in
/// the cloud config's tenant. `AZURE_FEDERATED_TOKEN_FILE`, naming another token, is not
/// read (one warning line).
#[test]
fn an_azure_json_federated_token_file_authenticates_aad_client_id_under_the_upstream_name() {
    let entry = entry("aks-agentbaker.yaml");
    let refresh = refresh_token(3 * 3600);
    let files = tempfile::tempdir().expect("tempdir");
    let token = sa_token(
        "api://AzureADTokenExchange",
        "kube-system",
        "node",
        "uid-1",
        1,
    );
    let file = files.path().join("azure-identity-token");
    std::fs::write(&file, format!("{token}\n")).expect("write");
    let other = files.path().join("other-token");
    std::fs::write(&other, "other.federated.token").expect("write");
    let azure_json = format!(
        r#"{{"cloud":"AzurePublicCloud","tenantId":"{TENANT}","aadClientId":"{CLIENT}","aadClientSecret":"{SECRET}","useFederatedWorkloadIdentityExtension":true,"aadFederatedTokenFile":"{}"}}"#,
        file.display()
    );
    let node = Node::new(
        &entry,
        Script::ok_for("myacr.azurecr.io", &refresh),
        &azure_json,
        "",
        true,
    );
    let out = node.run(
        &entry,
        &entry.request("myacr.azurecr.io/app"),
        &[("AZURE_FEDERATED_TOKEN_FILE", other.to_str().expect("utf-8"))],
    );
    assert_eq!(
        auth(&entry, &out),
        acr_answer([("myacr.azurecr.io".into(), creds(&refresh))])
    );
    let aad = node
        .fake
        .one("POST", &format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(aad.form["grant_type"], "client_credentials");
    assert_eq!(aad.form["client_id"], CLIENT);
    assert_eq!(
        aad.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(aad.form["client_assertion"], token, "the file, trimmed");
    assert!(!aad.form.contains_key("client_secret"));
    assert!(imds_calls(&node.fake).is_empty());
    assert_exchanged(
        &node.fake,
        "myacr.azurecr.io",
        "aad",
        entry.label().as_str(),
    );
    assert_eq!(
        node.fake.one("POST", "/oauth2/exchange").form["tenant"],
        TENANT
    );
    let err = crate::common::stderr(&out);
    let warned: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("AZURE_FEDERATED_TOKEN_FILE"))
        .collect();
    assert_eq!(warned.len(), 1, "{err}");
    assert!(warned[0].contains("ignored"), "{err}");
    for secret in [token.as_str(), SECRET, &refresh] {
        assert!(!err.contains(secret), "{err}");
    }
}
