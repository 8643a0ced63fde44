//! What operators see: `explain`, `validate-config` (checks and `--rbac`), the example
//! configs, metrics, README's "Any registry" block.

use super::*;

#[test]
fn explain_names_the_rule_the_identity_and_the_method_without_io() {
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &format!(
            "{}    - hosts: [\"*.example.com\"]\n      identity: node\n      node: {{tokenFile: /nonexistent}}\n      method: {{passThrough: {{}}}}\n",
            pod_rule("registry", "tokenExchange: {endpoint: \"https://sts.example.com/token\", username: u}")
        ),
    );
    let out = s.run(
        &["--config", &cfg, "explain", IMAGE, "other.example.com/x"],
        "",
    );
    let text = stderr(&out) + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "identity.rules[0] matches through \"reg.example.com\"",
        "method: tokenExchange at https://sts.example.com/token",
        "identity.rules[1] matches through \"*.example.com\"",
        "identity: the node's (tokenFile)",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
}

/// The repository's `config/NAME`.
fn example(name: &str) -> String {
    format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn validate_config_checks_each_rule_against_the_kubelet_entry_that_serves_it() {
    let s = Sandbox::new();
    // The example pair is clean.
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            &example("identity.yaml"),
            &example("credential-provider-identity.yaml"),
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.ends_with(", 0 warnings\n"),
        "{text}{}",
        stderr(&out)
    );
    // A wrong audience and cacheType for the Harbor entry, the zot host left out of every
    // matchImages, the annotation the zot rule reads not passed.
    let text = std::fs::read_to_string(example("credential-provider-identity.yaml")).unwrap();
    let bad = text
        .replace(
            "serviceAccountTokenAudience: harbor.example.com",
            "serviceAccountTokenAudience: harbor",
        )
        .replace("cacheType: Token", "cacheType: ServiceAccount")
        .replace("- registries.example.com/identity", "- example.com/other");
    let kubelet = s.tmp.path().join("kubelet.yaml");
    write(&kubelet, &bad);
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            &example("identity.yaml"),
            kubelet.to_str().unwrap(),
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "warnings only: {text}");
    for want in [
        "warning: providers[0] (name \"kubelet-keyring-harbor\"): plugin config ",
        "identity.rules[0] (passThrough): the kubelet requests tokens for audience \"harbor\" (tokenAttributes.serviceAccountTokenAudience), the rule accepts only \"harbor.example.com\"",
        "identity.rules[0] (passThrough): passes the pod's token through as the password: tokenAttributes.cacheType must be Token (is \"ServiceAccount\")",
        "identity.rules[6] (tokenExchange): reads the service-account annotation \"registries.example.com/identity\", which the kubelet does not pass",
        ", 3 warnings",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    write(
        &kubelet,
        &text_without_zot(
            &std::fs::read_to_string(example("credential-provider-identity.yaml")).unwrap(),
        ),
    );
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            &example("identity.yaml"),
            kubelet.to_str().unwrap(),
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("identity.rules[6].hosts[0] \"zot.example.com\": no matchImages entry of the providers that run kubelet-keyring with it admits it"),
        "{text}"
    );
    // Without --plugin-config, the file an entry names is checked when it exists here, and a
    // file that does not load is a warning: every pull would exit 2.
    let plugin = s.tmp.path().join("keyring.yaml");
    write(&plugin, "identity:\n  rules: [{hosts: [harbor.example.com], identity: pod, pod: {audience: other}, method: {passThrough: {}}}]\n");
    let named = bad.replace(
        "/etc/kubernetes/kubelet-keyring.yaml",
        plugin.to_str().unwrap(),
    );
    write(&kubelet, &named);
    let out = s.run(&["validate-config", kubelet.to_str().unwrap()], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("the rule accepts only \"other\""), "{text}");
    write(
        &plugin,
        "identity: {rules: [{hosts: [x], identity: sometimes}]}\n",
    );
    let out = s.run(&["validate-config", kubelet.to_str().unwrap()], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("the plugin config is refused, so every pull exits 2"),
        "{text}"
    );
    // A --plugin-config that does not load is a usage error.
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            plugin.to_str().unwrap(),
            kubelet.to_str().unwrap(),
        ],
        "",
    );
    assert_one_line_exit(&out, 2, &[]);
}

fn text_without_zot(kubelet: &str) -> String {
    kubelet.replace("      - zot.example.com\n", "")
}

#[test]
fn validate_config_prints_the_rbac_every_token_audience_needs() {
    let s = Sandbox::new();
    let out = s.run(
        &[
            "validate-config",
            "--rbac",
            &example("credential-provider-identity.yaml"),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .collect();
    assert_eq!(docs.len(), 2, "{text}");
    let (role, binding) = (&docs[0], &docs[1]);
    assert_eq!(role["kind"], "ClusterRole");
    assert_eq!(
        role["rules"][0]["verbs"],
        json!(["request-serviceaccounts-token-audience"])
    );
    assert_eq!(role["rules"][0]["apiGroups"], json!([""]));
    assert_eq!(
        role["rules"][0]["resources"],
        json!([
            "harbor.example.com",
            "https://kubernetes.default.svc",
            "registries.example.com"
        ])
    );
    assert_eq!(binding["kind"], "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}])
    );
    // No tokenAttributes anywhere: nothing to grant.
    let out = s.run(
        &[
            "validate-config",
            "--rbac",
            &example("credential-provider-config.yaml"),
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# No provider has tokenAttributes"));
}

#[test]
fn the_example_plugin_configs_load_and_explain_names_their_rules_and_mirrors() {
    let s = Sandbox::new();
    let out = s.run(
        &[
            "--config",
            &example("identity.yaml"),
            "explain",
            "harbor.example.com/team/app",
            "nginx",
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for want in [
        "harbor.example.com/team/app is served by identity.rules[0] (passThrough)",
        "mirrors (mirrors.registries[0]): example-aws.jfrog.io/docker-remote/library/nginx; credentials mirrorFirst",
        "mirror example-aws.jfrog.io/docker-remote (example-aws.jfrog.io/docker-remote/library/nginx): answered by identity",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let out = s.run(
        &[
            "--config",
            &example("mirrors.yaml"),
            "explain",
            "quay.io/team/app",
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("credentials mirrorOnly"), "{text}");
}

#[test]
fn metrics_label_an_identity_answer_like_any_other_backend() {
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let file = s.tmp.path().join("node-token");
    let token = registry_token(&issuer, "node-1", 7200);
    write(&file, &token);
    let cfg = config(
        &s,
        &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {{tokenFile: {}}}\n      method: {{passThrough: {{}}}}\n", file.display()),
    );
    let metrics = s.tmp.path().join("metrics");
    let m = metrics.to_str().unwrap();
    for _ in 0..2 {
        stdout_json(&run(
            &s,
            &cfg,
            &request(VERSIONS[0], IMAGE),
            &[],
            &["--metrics-dir", m],
        ));
    }
    let out = run(&s, &cfg, "", &[], &["--metrics-dir", m, "metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(metrics.join("kubelet-keyring.prom")).unwrap();
    let labels = format!("backend=\"identity\",registry=\"{HOST}\"");
    for family in [
        "kubelet_keyring_fetches_total",
        "kubelet_keyring_cache_hits_total",
        "kubelet_keyring_token_seconds_left",
    ] {
        assert!(
            text.contains(&format!("{family}{{{labels}}} ")),
            "{family} missing:\n{text}"
        );
    }
    assert_token_nowhere(&token, &[("textfile", text.as_bytes())], Some(&metrics));
}

/// README's "Any registry" block is a plugin config that loads, and its rules answer their
/// hosts.
#[test]
fn the_readmes_any_registry_config_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Any registry").expect("the section")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let s = Sandbox::new();
    let path = s.tmp.path().join("readme.yaml");
    write(&path, block);
    let cfg = path.to_str().unwrap();
    let images = [
        "harbor.example.com/a/b",
        "quay.example.com/a/b",
        "example.jfrog.io/a/b",
        "example-aws.jfrog.io/a/b",
        "docker.cloudsmith.io/a/b",
        "registry.example.com/a/b",
        "private.example.com/a/b",
        "zot.example.com/a/b",
    ];
    let mut args = vec!["--config", cfg, "explain"];
    args.extend(images);
    let out = s.run(&args, "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for (i, image) in images.iter().enumerate() {
        assert!(
            text.contains(&format!("{image} is served by identity.rules[{i}]")),
            "{image}:\n{text}"
        );
    }
}
