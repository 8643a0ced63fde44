//! Unit tests of the upstream command line and environment.

use super::*;
use keyring_api::upstream::parse;
use keyring_api::ErrorKind;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn run_with(
    a: &[&str],
    env: &[(&str, &str)],
    as_upstream: bool,
    default_exists: bool,
) -> Result<Config, String> {
    let parsed = parse(&PLUGIN, &args(a)).map_err(|e| e.message)?;
    let mut config = Config::default();
    let env = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    configure_with(&mut config, &parsed, as_upstream, &env, &|_| default_exists)
        .map_err(|e| e.message)?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn run(a: &[&str]) -> Result<Config, String> {
    run_with(a, &[], true, false)
}

fn mirror(source: &str, registry: &str) -> MirrorConfig {
    MirrorConfig {
        source: source.into(),
        registry: registry.into(),
    }
}

#[test]
fn every_shipped_args_line_parses() {
    // AKS AgentBaker (all variants), the upstream examples and docs, OpenShift.
    let lines: &[&[&str]] = &[
        &["/etc/kubernetes/azure.json"],
        &["c:\\k\\azure.json"],
        &["/etc/kubernetes/cloud.conf"],
        &[
            "/etc/kubernetes/azure.json",
            "--registry-mirror=mcr.microsoft.com:xxx.azurecr.io",
        ],
        &[
            "/etc/kubernetes/azure.json",
            "--registry-mirror=mcr.microsoft.com:test.azurecr.io",
            "--ib-sni-name=test.sni.local",
            "--ib-default-client-id=my-client-id",
            "--ib-default-tenant-id=my-tenant-id",
            "--ib-apiserver-ip=apiserver.example.com",
        ],
    ];
    for line in lines {
        let c = run(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(c.cloud_config.as_deref(), Some(Path::new(line[0])));
        assert_eq!(c.mirrors_use_node_identity, Some(true));
    }
    let c = run(lines[4]).unwrap();
    assert_eq!(c.mirrors, [mirror("mcr.microsoft.com", "test.azurecr.io")]);
    let ib = c.identity_binding.unwrap();
    assert_eq!(ib.sni_name, "test.sni.local");
    assert_eq!(ib.default_client_id.as_deref(), Some("my-client-id"));
    assert_eq!(ib.default_tenant_id.as_deref(), Some("my-tenant-id"));
    assert_eq!(ib.api_server, "apiserver.example.com");
}

#[test]
fn go_spellings_and_logging_flags() {
    let c = run(&[
        "-r",
        "mcr.microsoft.com:a.azurecr.io",
        "/etc/kubernetes/azure.json",
        "-v",
        "4",
        "--logtostderr=false",
        "--log-flush-frequency=5s",
    ])
    .unwrap();
    assert_eq!(c.mirrors, [mirror("mcr.microsoft.com", "a.azurecr.io")]);
    let p = parse(&PLUGIN, &args(&["x.json", "-v", "4", "--version"])).unwrap();
    assert_eq!(p.value("v"), Some("4"));
    assert!(p.is_set("version"));
    assert_eq!(
        parse(&PLUGIN, &args(&["a.json", "b.json"]))
            .unwrap_err()
            .kind,
        ErrorKind::Misconfigured
    );
    assert!(parse(&PLUGIN, &args(&["--ib-sni"]))
        .unwrap_err()
        .message
        .contains("unknown flag --ib-sni"));
}

#[test]
fn mirrors_with_ports_and_errors() {
    let none: &[String] = &[];
    let m = parse_mirrors(
        " MCR.microsoft.com:MyAcr.azurecr.io , mirror.local:5000:foo.azurecr.io,,",
        none,
    )
    .unwrap();
    assert_eq!(
        m,
        [
            mirror("mcr.microsoft.com", "myacr.azurecr.io"),
            mirror("mirror.local:5000", "foo.azurecr.io"),
        ]
    );
    for (bad, why) in [
        ("mcr.microsoft.com", "no ':'"),
        ("mirror.local:5000", "not an ACR login server"),
        ("https://mcr.microsoft.com:a.azurecr.io", "not a host"),
        ("mcr.microsoft.com/x:a.azurecr.io", "not a host"),
        (
            "mcr.microsoft.com:evil.example.com",
            "not an ACR login server",
        ),
        ("a.io:x.azurecr.io,A.io:y.azurecr.io", "mapped twice"),
        ("mirror.local:99999:a.azurecr.io", "not a host"),
    ] {
        let e = parse_mirrors(bad, none).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Misconfigured);
        assert!(
            e.message.contains(why) && e.message.contains("--registry-mirror"),
            "{bad}: {}",
            e.message
        );
    }
    // A suffix of a custom cloud makes its registries ACRs.
    let custom = ["custom.registry.io".to_string()];
    assert!(parse_mirrors("mcr.microsoft.com:x.custom.registry.io", &custom).is_ok());
    // The plugin config's own mapping of a source wins.
    let parsed = parse(
        &PLUGIN,
        &args(&["--registry-mirror=mcr.microsoft.com:b.azurecr.io,q.io:c.azurecr.io"]),
    )
    .unwrap();
    let mut c = Config {
        mirrors: vec![mirror("mcr.microsoft.com", "a.azurecr.io")],
        ..Config::default()
    };
    configure_with(&mut c, &parsed, true, &|_| None, &|_| false).unwrap();
    assert_eq!(
        c.mirrors,
        [
            mirror("mcr.microsoft.com", "a.azurecr.io"),
            mirror("q.io", "c.azurecr.io")
        ]
    );
}

#[test]
fn identity_binding_flags_are_checked_as_upstream() {
    let base = "/etc/kubernetes/azure.json";
    for (line, want) in [
        (
            &[
                "--ib-sni-name=https://x.local",
                "--ib-apiserver-ip=10.0.0.1",
            ][..],
            "must not contain a protocol prefix",
        ),
        (
            &["--ib-sni-name=x.local"],
            "--ib-apiserver-ip must be set when --ib-sni-name",
        ),
        (
            &["--ib-default-client-id=c"],
            "--ib-sni-name must be set when --ib-default-client-id",
        ),
        (
            &["--ib-default-tenant-id=t"],
            "--ib-sni-name must be set when --ib-default-tenant-id",
        ),
        (
            &["--ib-apiserver-ip=10.0.0.1"],
            "--ib-sni-name must be set when --ib-apiserver-ip",
        ),
        (
            &["--ib-sni-name=x.local", "--ib-apiserver-ip=not an ip"],
            "valid IP address or resolvable FQDN",
        ),
    ] {
        let mut a = vec![base];
        a.extend_from_slice(line);
        let e = run(&a).unwrap_err();
        assert!(e.contains(want), "{line:?}: {e}");
    }
    let c = run(&[base, "--ib-sni-name=x.local", "--ib-apiserver-ip=10.0.0.1"]).unwrap();
    let ib = c.identity_binding.unwrap();
    assert_eq!((ib.default_client_id, ib.default_tenant_id), (None, None));
    assert!(run(&[base]).unwrap().identity_binding.is_none());
}

#[test]
fn cloud_config_default_only_under_the_upstream_name_and_when_present() {
    assert_eq!(
        run_with(&[], &[], true, true)
            .unwrap()
            .cloud_config
            .as_deref(),
        Some(Path::new(DEFAULT_CLOUD_CONFIG))
    );
    assert_eq!(run_with(&[], &[], true, false).unwrap().cloud_config, None);
    assert_eq!(run_with(&[], &[], false, true).unwrap().cloud_config, None);
    let c = run_with(&["/x/azure.json"], &[], false, true).unwrap();
    assert_eq!(c.cloud_config.as_deref(), Some(Path::new("/x/azure.json")));
    assert_eq!(c.mirrors_use_node_identity, None);
}

#[test]
fn the_azure_stack_environment_file_names_the_authority_and_a_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("akscustom.json");
    std::fs::write(
        &f,
        r#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.custom.example/","containerRegistryDNSSuffix":".custom.registry.io","resourceManagerEndpoint":"https://management.custom.example/"}"#,
    )
    .unwrap();
    let path = f.to_str().unwrap();
    let c = run_with(
        &[
            "/etc/kubernetes/azure.json",
            "--registry-mirror=mcr.microsoft.com:a.custom.registry.io",
        ],
        &[("AZURE_ENVIRONMENT_FILEPATH", path)],
        true,
        false,
    )
    .unwrap();
    assert_eq!(c.registry_suffixes, ["custom.registry.io"]);
    let s = c.validate().unwrap();
    assert_eq!(
        s.authority_host.as_deref(),
        Some("https://login.custom.example")
    );
    assert_eq!(s.mirrors[0].registry, "a.custom.registry.io");
    // Entra ID receives the client secret there: plain http is refused, even to loopback.
    for clear in ["http://login.custom.example/", "http://127.0.0.1:9/"] {
        std::fs::write(
            &f,
            format!(
                r#"{{"activeDirectoryEndpoint":"{clear}","containerRegistryDNSSuffix":"x.io"}}"#
            ),
        )
        .unwrap();
        let e = run_with(&[], &[("AZURE_ENVIRONMENT_FILEPATH", path)], true, false).unwrap_err();
        assert!(
            e.contains("AZURE_ENVIRONMENT_FILEPATH")
                && e.contains("activeDirectoryEndpoint is not an https:// URL"),
            "{clear}: {e}"
        );
    }
    std::fs::write(&f, "{not json: hunter2").unwrap();
    let e = run_with(&[], &[("AZURE_ENVIRONMENT_FILEPATH", path)], true, false).unwrap_err();
    assert!(
        e.contains("AZURE_ENVIRONMENT_FILEPATH") && !e.contains("hunter2"),
        "{e}"
    );
    // Past the cap the file is refused, not cut to a prefix that happens to parse.
    std::fs::write(
        &f,
        format!(
            r#"{{"activeDirectoryEndpoint":"https://login.custom.example/"}}{}"#,
            " ".repeat(1 << 20)
        ),
    )
    .unwrap();
    let e = run_with(&[], &[("AZURE_ENVIRONMENT_FILEPATH", path)], true, false).unwrap_err();
    assert!(
        e.contains("AZURE_ENVIRONMENT_FILEPATH") && e.contains("larger than 1048576 bytes"),
        "{e}"
    );
    let e = run_with(
        &[],
        &[("AZURE_ENVIRONMENT_FILEPATH", "/nonexistent/env.json")],
        true,
        false,
    )
    .unwrap_err();
    assert!(
        e.contains("cannot read AZURE_ENVIRONMENT_FILEPATH /nonexistent/env.json"),
        "{e}"
    );
}

#[test]
fn every_flag_and_variable_has_a_note() {
    for f in PLUGIN.flags {
        assert!(!f.note.is_empty(), "{}", f.long);
    }
    for v in PLUGIN.env {
        assert!(!v.note.is_empty(), "{}", v.name);
    }
    // -v is klog's verbosity here, never --version's shorthand.
    assert!(PLUGIN.flags.iter().all(|f| f.short != Some('v')));
}
