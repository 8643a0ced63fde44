use super::*;

fn parse(json: &str) -> Config {
    serde_json::from_str(json).unwrap()
}

fn err(json: &str) -> String {
    parse(json).validate().unwrap_err().to_string()
}

const NODE_FILE: &str = r#""identity":"node","node":{"tokenFile":"/t"}"#;

#[test]
fn a_rule_needs_what_its_identity_uses() {
    assert!(parse(&format!(
        r#"{{"rules":[{{"hosts":["h.example.com"],{NODE_FILE},"method":{{"passThrough":{{}}}}}}]}}"#
    ))
    .validate()
    .is_ok());
    assert_eq!(
        err(r#"{"rules":[{"hosts":["h.example.com"],"identity":"pod","method":{"passThrough":{}}}]}"#),
        "identity.rules[0].pod: identity pod or podWhenAnnotated needs pod.audience (the kubelet's serviceAccountTokenAudience)"
    );
    assert!(err(r#"{"rules":[{"hosts":["h.example.com"],"identity":"podWhenAnnotated","pod":{"audience":"a"},"node":{"tokenFile":"/t"},"method":{"passThrough":{}}}]}"#)
        .starts_with("identity.rules[0].pod.annotation:"));
    assert!(err(
        r#"{"rules":[{"hosts":["h.example.com"],"identity":"node","method":{"passThrough":{}}}]}"#
    )
    .starts_with("identity.rules[0].node:"));
}

#[test]
fn endpoints_are_https_and_hosts_are_patterns() {
    let rule = |method: &str| {
        format!(r#"{{"rules":[{{"hosts":["h.example.com"],{NODE_FILE},"method":{method}}}]}}"#)
    };
    assert_eq!(
        err(&rule(r#"{"tokenExchange":{"endpoint":"http://sts.example.com/token?x=1","username":"u"}}"#)),
        "identity.rules[0].method.tokenExchange.endpoint: http://sts.example.com/token must be https://host[:port][/path], without user-info, query or fragment"
    );
    assert_eq!(
        err(&rule(r#"{"tokenExchange":{"endpoint":"http://sts.example.com/token","username":"u"}}"#)),
        "identity.rules[0].method.tokenExchange.endpoint: http://sts.example.com/token is not https://: tokens and credentials go only over TLS"
    );
    assert!(parse(&rule(
        r#"{"tokenExchange":{"endpoint":"http://127.0.0.1:8080/token","username":"u"}}"#
    ))
    .validate()
    .is_ok());
    assert!(err(r#"{"rules":[{"hosts":["https://h.example.com"],"identity":"node","node":{"tokenFile":"/t"},"method":{"passThrough":{}}}]}"#)
        .starts_with("identity.rules[0].hosts[0]:"));
    assert!(err(&rule(
        r#"{"quay":{"url":"https://quay.example.com","robot":"norobot"}}"#
    ))
    .contains("robot"));
}

#[test]
fn methods_only_take_identities_they_can_use() {
    assert!(err(r#"{"rules":[{"hosts":["h.example.com"],"identity":"node","node":{"aws":{}},"method":{"passThrough":{}}}]}"#)
        .starts_with("identity.rules[0].node.aws:"));
    assert!(err(r#"{"rules":[{"hosts":["h.example.com"],"identity":"node","node":{"tokenFile":"/t"},"method":{"artifactoryAws":{"url":"https://a.example.com"}}}]}"#)
        .starts_with("identity.rules[0].method.artifactoryAws:"));
    assert!(err(r#"{"rules":[{"hosts":["h.example.com"],"identity":"node","node":{"tokenFile":"/t"},"method":{"kubernetesSecret":{"apiServer":"https://k","secret":"s"}}}]}"#)
        .starts_with("identity.rules[0].method.kubernetesSecret:"));
    assert!(parse(r#"{"rules":[{"hosts":["h.example.com"],"identity":"node","node":{"aws":{}},"method":{"artifactoryAws":{"url":"https://a.example.com"}}}]}"#).validate().is_ok());
}

#[test]
fn vaults_aws_method_takes_the_nodes_aws_identity_and_only_it_signs_a_server_id() {
    let rule = |identity: &str, auth: &str, extra: &str| {
        format!(
            r#"{{"rules":[{{"hosts":["h.example.com"],{identity},"method":{{"vault":{{"address":"https://v.example.com","auth":"{auth}","role":"r","path":"p"{extra}}}}}}}]}}"#
        )
    };
    let aws = r#""identity":"node","node":{"aws":{}}"#;
    assert!(
        parse(&rule(aws, "aws", r#","iamServerId":"vault.example.com""#))
            .validate()
            .is_ok()
    );
    assert!(err(&rule(NODE_FILE, "aws", ""))
        .starts_with("identity.rules[0].method.vault.auth: aws needs identity node with node.aws"));
    assert!(err(&rule(aws, "jwt", "")).starts_with("identity.rules[0].node.aws:"));
    assert!(err(&rule(NODE_FILE, "jwt", r#","iamServerId":"x""#))
        .starts_with("identity.rules[0].method.vault.iamServerId:"));
}
