//! Identity bindings and a pod's service-account token: the exchange at the binding endpoint
//! (over real TLS pinned to the API server), the annotations it needs, the tenant it never
//! sends.

use super::*;

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
