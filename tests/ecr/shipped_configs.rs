//! Drop-in: the binary as ecr-credential-provider, with every shipped ECR config.

use super::*;

/// The region an ECR host pattern of the shipped configs stands for, by its partition.
fn region_of_pattern(pattern: &str) -> &'static str {
    let p = pattern.trim_end_matches(".cn");
    if pattern.ends_with(".cn") {
        "cn-north-1"
    } else if p.ends_with("sc2s.sgov.gov") {
        "us-isob-east-1"
    } else if p.ends_with("c2s.ic.gov") {
        "us-iso-east-1"
    } else if p.ends_with("csp.hci.ic.gov") {
        "us-isof-south-1"
    } else if p.ends_with("cloud.adc-e.uk") {
        "eu-isoe-west-1"
    } else if p.ends_with("amazonaws.eu") {
        "eusc-de-east-1"
    } else if p.contains("fips") {
        "us-gov-west-1"
    } else {
        "us-west-2"
    }
}

/// Every ECR provider entry that node images ship (EKS AL2 and AL2023, EKS Hybrid,
/// Bottlerocket, EKS Anywhere, kops incl. its mirrors, Cluster API, OpenShift, Talos, the
/// kubernetes.io example), run by the kubelet's rules under its own name with its exact args
/// and env, for an image of each of its `matchImages`: moto's token (ECR Public's from a fake,
/// moto has none), accepted by the kubelet's strict decoding. Hosts that are not ECR's
/// (kops's `docker.io`, `registry.k8s.io` pull-through mirrors) get a token for the default
/// region, as upstream does.
#[test]
#[ignore = "needs moto_server"]
fn upstream_every_shipped_ecr_entry_gets_a_token() {
    use crate::common::upstream::{entries, host_for};
    let moto = Moto::start();
    let (_, password, _) = moto.direct_token("us-west-2");
    let public = base64::engine::general_purpose::STANDARD.encode("AWS:public-dropin-password");
    let expires = unix_now() as f64 + 12.0 * 3600.0;
    let public_fake = aws_fake(move |_| {
        (
            200,
            format!(
                r#"{{"authorizationData":{{"authorizationToken":"{public}","expiresAt":{expires}}}}}"#
            ),
        )
    });
    let node = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_ENDPOINT_URL_ECR", moto.url()),
        ("AWS_ENDPOINT_URL_ECR_PUBLIC", public_fake.url("")),
        // The node's region, as IMDS would tell it; entries may set their own.
        ("AWS_REGION", "us-west-2".to_string()),
        (TEST_NOW_ENV, TEST_NOW.to_string()),
    ];
    let node: Vec<(&str, &str)> = node.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let all = entries(&["ecr-credential-provider"]);
    assert!(all.len() >= 15, "{}", all.len());
    // Many configs share patterns: each (pattern, args, env, apiVersion) is run once.
    let mut seen = std::collections::BTreeSet::new();
    for entry in &all {
        let s = Sandbox::new();
        let region_env = entry
            .provider
            .env
            .iter()
            .find(|e| e.name == "AWS_REGION")
            .map_or("us-west-2", |e| e.value.as_str());
        for pattern in &entry.provider.match_images {
            let p = &entry.provider;
            let env: Vec<_> = p.env.iter().map(|e| (&e.name, &e.value)).collect();
            if !seen.insert(format!("{pattern} {:?} {env:?} {}", p.args, p.api_version)) {
                continue;
            }
            let region = region_of_pattern(pattern);
            let host = host_for(pattern, ACCOUNT, region);
            let image = format!("{host}/team/app:1");
            let before = moto.token_calls().len();
            let (key, cred) = s.first_try(entry, &node, &image);
            assert_eq!(key, host, "{} {image}", entry.label());
            assert_eq!(cred.username, "AWS", "{} {image}", entry.label());
            let calls = moto.token_calls();
            if host == "public.ecr.aws" || host == "ecr-public.aws.com" {
                assert_eq!(cred.password, "public-dropin-password", "{image}");
                assert_eq!(calls.len(), before, "{image}");
                continue;
            }
            assert_eq!(cred.password, password, "{} {image}", entry.label());
            assert_eq!(calls.len(), before + 1, "{} {image}", entry.label());
            // Signed for the host's region, or the default region for a mirror host.
            // ECR's own domains; `amazonaws.cn` (one AL2 config has it) is none of them.
            let ecr_domain = [
                ".amazonaws.com",
                ".amazonaws.com.cn",
                ".amazonaws.eu",
                ".sc2s.sgov.gov",
                ".c2s.ic.gov",
                ".cloud.adc-e.uk",
                ".csp.hci.ic.gov",
                ".on.aws",
                ".on.amazonwebservices.com.cn",
            ]
            .iter()
            .any(|d| host.ends_with(d));
            let labels: Vec<&str> = host.split('.').collect();
            let want = match labels.iter().position(|l| l.starts_with("dkr")) {
                Some(_) if !ecr_domain => region_env,
                Some(i) if labels[i].starts_with("dkr-ecr") => labels[i + 1],
                Some(i) => labels[i + 2],
                None => region_env,
            };
            assert!(
                calls[before].contains(&format!("/{want}/ecr/aws4_request")),
                "{} {image}: {}",
                entry.label(),
                calls[before]
            );
        }
    }
}

/// The kubelet's argument to ecr-credential-provider in EKS AL2 and kops configs,
/// `get-credentials`, and klog's `--v=N` are taken.
#[test]
#[ignore = "needs moto_server"]
fn upstream_the_kubelets_args_and_klog_verbosity_are_taken() {
    use crate::common::upstream::entries;
    let moto = Moto::start();
    let entry = entries(&["ecr-credential-provider"])
        .into_iter()
        .find(|e| e.file == "kops-aws.yaml")
        .expect("the kops entry");
    let s = Sandbox::new();
    let node = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_ENDPOINT_URL_ECR", moto.url()),
        (TEST_NOW_ENV, TEST_NOW.to_string()),
    ];
    let node: Vec<(&str, &str)> = node.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let image = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app");
    for extra in [&["--v=4"][..], &["--v", "2"], &["--logtostderr"]] {
        let mut cmd = s.upstream_command(&entry, &node);
        cmd.args(extra);
        let out = run_with(cmd, request(VERSIONS[0], &image).as_bytes());
        assert_eq!(
            creds(
                &stdout_json(&out),
                &format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
            )
            .0,
            "AWS",
            "{extra:?}"
        );
    }
}

/// A flag upstream does not have is refused with exit 2 and a line naming it, before any
/// call to AWS.
#[test]
fn upstream_an_unknown_flag_is_refused_with_exit_2_naming_it() {
    use crate::common::upstream::entries;
    let entry = entries(&["ecr-credential-provider"])
        .into_iter()
        .find(|e| e.file == "kops-aws.yaml")
        .expect("the kops entry");
    let s = Sandbox::new();
    let endpoint = closed_port_url();
    let node = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_ENDPOINT_URL_ECR", endpoint.as_str()),
    ];
    let image = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app");
    let mut cmd = s.upstream_command(&entry, &node);
    cmd.arg("--no-such-flag=secret-value");
    let out = run_with(cmd, request(VERSIONS[0], &image).as_bytes());
    let line = assert_misconfigured(&out, &["secret-value"]);
    assert!(line.contains("--no-such-flag"), "{line}");
}

/// Under the upstream name, the service-account session is named as upstream names it
/// (`ecr-credential-provider`: CloudTrail and `sts:RoleSessionName` conditions see what they
/// saw); the IRSA annotation `eks.amazonaws.com/role-arn` is a further role source only when
/// the plugin config opts in (`ecr.irsaRoleAnnotation: true`).
#[test]
#[ignore = "needs moto_server"]
fn upstream_session_name_and_the_opt_in_irsa_annotation() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let name = "ecr-credential-provider";
    let bin = s.bin_dir_with(name).join(name);
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let run = |annotations: &[(&str, &str)], config: Option<&str>| {
        let mut cmd = Command::new(&bin);
        cmd.env_clear()
            .env("HOME", &s.home)
            .env("KUBELET_KEYRING_ROOT_DIR", &s.root)
            .env("KUBELET_KEYRING_NO_CACHE", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_ECR", moto.url())
            .env("AWS_ENDPOINT_URL_STS", moto.url())
            .env("AWS_REGION", "us-east-1")
            .env(TEST_NOW_ENV, TEST_NOW.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(c) = config {
            let path = s.tmp.path().join("keyring.yaml");
            write(&path, c);
            cmd.env("KUBELET_KEYRING_CONFIG", &path);
        }
        let req = sa_request(&format!("{SA_HOST}/app"), &token, annotations);
        run_with(cmd, req.as_bytes())
    };
    let role = "arn:aws:iam::111111111111:role/team-pull";
    let out = run(&[(ROLE_ANNOTATION, role)], None);
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "111111111111-auth-token"
    );
    let calls = moto.assume_role_calls();
    assert_eq!(calls[0]["RoleSessionName"], "ecr-credential-provider");

    // Only the IRSA annotation, no node credentials: no role unless opted in.
    let irsa = [("eks.amazonaws.com/role-arn", role)];
    let out = run(&irsa, None);
    assert_misconfigured(&out, &[&token]);
    assert_eq!(moto.assume_role_calls().len(), 1);
    let out = run(&irsa, Some("ecr:\n  irsaRoleAnnotation: true\n"));
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "111111111111-auth-token"
    );
    let calls = moto.assume_role_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1]["RoleArn"], role);
    crate::common::assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
}
