//! Whose identity: `podWhenAnnotated`, and the node's tokens from GCE metadata and Azure IMDS.

use super::*;

#[test]
fn pod_when_annotated_uses_the_pod_only_when_its_service_account_asks() {
    let issuer = Arc::new(Issuer::new());
    let i = issuer.clone();
    // Pass-through would hide which token went where: an exchange that echoes the subject.
    let server = fake(move |r| {
        let form = form(std::str::from_utf8(&r.body).unwrap_or_default());
        let subject = form.get("subject_token").cloned().unwrap_or_default();
        let who = match i.verify(&subject) {
            Some(c) => c["sub"].as_str().unwrap_or_default().to_string(),
            None => "unverified".into(),
        };
        json(200, &json!({"access_token": format!("for:{who}"), "expires_in": 3600, "token_type": "Bearer", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}).to_string())
    });
    let s = Sandbox::new();
    let file = s.tmp.path().join("node-token");
    write(
        &file,
        &issuer.sign(&json!({"sub": "node-1", "aud": "registry", "exp": now() + 7200})),
    );
    let cfg = config(
        &s,
        &format!(
            "    - hosts: [{HOST}]\n      identity: podWhenAnnotated\n      pod: {{audience: registry, annotation: example.com/registry-identity}}\n      node: {{tokenFile: {}}}\n      method: {{tokenExchange: {{endpoint: \"{}\", username: u}}}}\n",
            file.display(),
            server.url("/token")
        ),
    );
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let ask = |annotations: &[(&str, &str)]| {
        let resp = stdout_json(&run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, annotations),
            &[PLAIN_HTTP],
            &["--no-cache"],
        ));
        creds(&resp, HOST).1
    };
    assert_eq!(
        ask(&[("example.com/registry-identity", "true")]),
        "for:system:serviceaccount:team:puller"
    );
    assert_eq!(ask(&[]), "for:node-1");
    assert_eq!(
        ask(&[("example.com/registry-identity", "false")]),
        "for:node-1"
    );
    // A v1beta1 request has no token: the node's identity.
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &request(VERSIONS[1], IMAGE),
        &[PLAIN_HTTP],
        &["--no-cache"],
    ));
    assert_eq!(creds(&resp, HOST).1, "for:node-1");
}

#[test]
fn node_identity_tokens_come_from_gce_metadata_and_azure_imds_for_the_configured_audience() {
    let issuer = Arc::new(Issuer::new());
    let metadata = Metadata::start(issuer.clone());
    let i = issuer.clone();
    let server = fake(move |r| {
        let form = form(std::str::from_utf8(&r.body).unwrap_or_default());
        let c = i
            .verify(
                form.get("subject_token")
                    .map(String::as_str)
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
        json(200, &json!({"access_token": format!("for:{}:{}", c["sub"].as_str().unwrap_or("?"), c["aud"].as_str().unwrap_or("?")), "expires_in": 3600}).to_string())
    });
    let s = Sandbox::new();
    let rule = |node: &str| {
        config(&s, &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {node}\n      method: {{tokenExchange: {{endpoint: \"{}\", username: u}}}}\n", server.url("/token")))
    };
    let gce = rule("{gcp: {audience: \"https://registry.example.com\"}}");
    let env = [PLAIN_HTTP, ("GCE_METADATA_HOST", &metadata.host())];
    let resp = stdout_json(&run(
        &s,
        &gce,
        &request(VERSIONS[2], IMAGE),
        &env,
        &["--no-cache"],
    ));
    assert_eq!(
        creds(&resp, HOST).1,
        "for:gce-sa:https://registry.example.com"
    );
    let azure = rule(&format!(
        "{{azure: {{resource: \"api://registry\", imds: \"{}\"}}}}",
        metadata.imds()
    ));
    let resp = stdout_json(&run(
        &s,
        &azure,
        &request(VERSIONS[0], IMAGE),
        &[PLAIN_HTTP],
        &["--no-cache"],
    ));
    assert_eq!(creds(&resp, HOST).1, "for:azure-mi:api://registry");
}
