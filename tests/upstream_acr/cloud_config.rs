//! The cloud config: custom clouds and their environment file, the positional file read on
//! every call, `resourceManagerEndpoint` and `cloudConfigType`.

use super::*;

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
