//! The example kubelet configs in `config/credential-provider-*.yaml` pass
//! `validate-config` with neither errors nor warnings, for the kubelet releases they are
//! written for, also with the binary in a bin dir (so their `args` parse with the real CLI).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::Sandbox;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// Every `config/credential-provider-*.yaml`: the set the tests below must cover.
fn all_examples() -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("config"))
            .expect("config/")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("credential-provider-") && n.ends_with(".yaml"))
            .collect();
    names.sort();
    names
}

fn validate(sb: &Sandbox, args: &[&str]) -> Output {
    let mut all = vec!["validate-config"];
    all.extend_from_slice(args);
    sb.run(&all, "")
}

fn assert_clean(out: &Output, what: &str) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}:\n{text}{}",
        crate::common::stderr(out)
    );
    assert_eq!(text.lines().count(), 1, "{what}: findings:\n{text}");
    assert!(
        text.contains(": valid for kubelet") && text.ends_with(", 0 warnings\n"),
        "{what}: {text}"
    );
}

/// (file, kubelet releases it is for)
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "credential-provider-config.yaml",
        &["1.26", "1.30", "1.33", "1.34", "1.35"],
    ),
    ("credential-provider-ecr.yaml", &["1.26", "1.35"]),
    ("credential-provider-gcp.yaml", &["1.26", "1.35"]),
    ("credential-provider-acr.yaml", &["1.26", "1.35"]),
    (
        "credential-provider-config-v1beta1.yaml",
        &["1.24", "1.25", "1.35"],
    ),
    // KEP-4412 service-account tokens: tokenAttributes with cacheType (1.34+).
    ("credential-provider-ecr-sa-token.yaml", &["1.34", "1.35"]),
    ("credential-provider-gcp-sa-token.yaml", &["1.34", "1.35"]),
    ("credential-provider-acr-sa-token.yaml", &["1.34", "1.35"]),
    // Any registry: one entry per token audience, each a symlink named kubelet-keyring-*.
    ("credential-provider-identity.yaml", &["1.34", "1.35"]),
];

#[test]
fn every_example_is_covered() {
    let listed: Vec<&str> = EXAMPLES.iter().map(|(f, _)| *f).collect();
    let mut listed = listed;
    listed.sort_unstable();
    assert_eq!(all_examples(), listed);
}

#[test]
fn examples_validate_without_findings() {
    let sb = Sandbox::new();
    for (name, releases) in EXAMPLES {
        let path = example(name);
        let p = path.to_str().expect("utf-8 path");
        assert_clean(&validate(&sb, &[p]), name);
        for v in *releases {
            assert_clean(
                &validate(&sb, &["--kubelet-version", v, p]),
                &format!("{name} on {v}"),
            );
        }
    }
}

#[test]
fn v1_examples_are_refused_by_kubelets_before_1_26() {
    let sb = Sandbox::new();
    for name in [
        "credential-provider-config.yaml",
        "credential-provider-ecr.yaml",
    ] {
        let p = example(name);
        let out = validate(
            &sb,
            &["--kubelet-version", "1.25", p.to_str().expect("utf-8")],
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("v1 needs kubelet 1.26+"));
    }
}

#[cfg(unix)]
#[test]
fn examples_with_the_binary_in_the_bin_dir() {
    let sb = Sandbox::new();
    let bin = sb.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for name in [
        "kubelet-keyring",
        "kubelet-keyring-harbor",
        "kubelet-keyring-registries",
        "kubelet-keyring-secrets",
    ] {
        std::os::unix::fs::symlink(crate::common::BIN, bin.join(name)).expect("symlink");
    }
    for (name, _) in EXAMPLES {
        let p = example(name);
        let out = validate(
            &sb,
            &[
                "--bin-dir",
                bin.to_str().expect("utf-8"),
                p.to_str().expect("utf-8"),
            ],
        );
        assert_clean(&out, name);
    }
    // And without it there, each says so.
    let empty = sb.tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let p = example("credential-provider-config.yaml");
    let out = validate(
        &sb,
        &[
            "--bin-dir",
            empty.to_str().expect("utf-8"),
            p.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("warning: providers[0] (name \"kubelet-keyring\"): name: "));
}

/// The ACR example's commented-out workload-identity block (lines starting `#| `) is valid
/// once enabled, on the releases that have it.
#[test]
fn acr_workload_identity_block() {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(example("credential-provider-acr.yaml")).expect("read");
    assert!(text.contains("    #| tokenAttributes:"));
    let enabled: String = text
        .lines()
        .map(|l| match l.split_once("#| ") {
            Some((indent, rest)) if indent.trim().is_empty() => format!("{indent}{rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let f = sb.tmp.path().join("acr-wi.yaml");
    crate::common::write(&f, &enabled);
    let p = f.to_str().expect("utf-8");
    assert_clean(&validate(&sb, &[p]), "acr with tokenAttributes");
    assert_clean(
        &validate(&sb, &["--kubelet-version", "1.34", p]),
        "acr with tokenAttributes on 1.34",
    );
    let gate = "KubeletServiceAccountTokenForCredentialProviders";
    // 1.33 has no cacheType, and 1.32 no tokenAttributes: both refuse the file.
    for v in ["1.33", "1.32"] {
        let out = validate(
            &sb,
            &[
                "--kubelet-version",
                v,
                "--feature-gates",
                &format!("{gate}=true"),
                p,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{v}");
    }
    let out = validate(&sb, &["--feature-gates", &format!("{gate}=false"), p]);
    assert_eq!(out.status.code(), Some(1));
}

/// The per-cloud files are alternatives: merged as a directory (1.34+), the shared provider
/// name is an error.
#[test]
fn per_cloud_files_do_not_combine_in_a_directory() {
    let sb = Sandbox::new();
    let d = sb.tmp.path().join("conf.d");
    for name in [
        "credential-provider-ecr.yaml",
        "credential-provider-gcp.yaml",
    ] {
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::copy(example(name), d.join(name)).expect("copy");
    }
    let out = validate(&sb, &[d.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(r#"duplicate provider name "kubelet-keyring" found in configuration file(s)"#));
}

/// The token-mode examples: per upstream convention the audience of each cloud, the
/// annotations its backend reads, `cacheType: ServiceAccount` (the answer depends on the
/// service account, never echoes the token), and refused by kubelets without `cacheType`.
#[test]
fn sa_token_examples() {
    let sb = Sandbox::new();
    for (name, audience, keys) in [
        (
            "credential-provider-ecr-sa-token.yaml",
            "sts.amazonaws.com",
            &["eks.amazonaws.com/ecr-role-arn"][..],
        ),
        (
            "credential-provider-gcp-sa-token.yaml",
            "my-project.svc.id.goog",
            &[
                "iam.gke.io/enable-wi-image-pull",
                "iam.gke.io/gcp-service-account",
            ],
        ),
        (
            "credential-provider-acr-sa-token.yaml",
            "api://AzureADTokenExchange",
            &[
                "kubernetes.azure.com/acr-client-id",
                "kubernetes.azure.com/acr-tenant-id",
            ],
        ),
    ] {
        let text = std::fs::read_to_string(example(name)).expect("read");
        let doc: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
        let t = &doc["providers"][0]["tokenAttributes"];
        assert_eq!(
            t["serviceAccountTokenAudience"].as_str(),
            Some(audience),
            "{name}"
        );
        assert_eq!(t["cacheType"].as_str(), Some("ServiceAccount"), "{name}");
        assert_eq!(t["requireServiceAccount"].as_bool(), Some(false), "{name}");
        let optional: Vec<&str> = t["optionalServiceAccountAnnotationKeys"]
            .as_sequence()
            .expect("optional keys")
            .iter()
            .filter_map(|k| k.as_str())
            .collect();
        assert_eq!(optional, keys, "{name}");
        let p = example(name);
        let out = validate(
            &sb,
            &[
                "--kubelet-version",
                "1.33",
                "--feature-gates",
                "KubeletServiceAccountTokenForCredentialProviders=true",
                p.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{name} on 1.33");
    }
}
