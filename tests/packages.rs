//! The node-image packages of `scripts/package.sh`: the .deb passes lintian, installs, answers
//! the demo request from its installed path and removes cleanly; the .rpm carries the same
//! files with the same bytes; the binary carries its dependency list (cargo auditable) and the
//! CycloneDX SBOM names the same crates.
//!
//! Peer tests (`#[ignore = "needs ..."]`, see `crate::common`): they need root, dpkg,
//! lintian, rpm and rust-audit-info, and install a package on this machine. They never build
//! the packages (a fat-LTO release build takes minutes): scripts/test.sh runs
//! scripts/package.sh once and exports `KEYRING_PACKAGE_DIR`. A missing directory, package or
//! tool is a failure, never a skip.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::sha256_hex;

const NAME: &str = "kubelet-keyring";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const BIN_PATH: &str = "/usr/libexec/kubelet-credential-providers/kubelet-keyring";
const DOC: &str = "/usr/share/doc/kubelet-keyring";
/// zsh looks in different vendor directories on Debian and on Fedora/RHEL.
const ZSH_DEB: &str = "/usr/share/zsh/vendor-completions/_kubelet-keyring";
const ZSH_RPM: &str = "/usr/share/zsh/site-functions/_kubelet-keyring";
/// Files only a Debian package has.
const DEB_ONLY: [&str; 2] = [
    "/usr/share/doc/kubelet-keyring/changelog.Debian.gz",
    "/usr/share/lintian/overrides/kubelet-keyring",
];
/// Crates the dependency list and the SBOM must name (the AWS SDK, and the HTTP stack of
/// keyring-net that GCP and ACR use).
const CRATES: [&str; 2] = ["aws-sdk-ecr", "hyper-util"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The packages in `KEYRING_PACKAGE_DIR`; panics when it is not set or not a directory.
fn packages() -> Packages {
    let dir = std::env::var_os("KEYRING_PACKAGE_DIR")
        .map(PathBuf::from)
        .expect(
            "the package tests need KEYRING_PACKAGE_DIR, the output of scripts/package.sh \
             (bash scripts/test.sh runs it and sets it)",
        );
    assert!(
        dir.is_dir(),
        "KEYRING_PACKAGE_DIR={} is not a directory: run bash scripts/package.sh",
        dir.display()
    );
    Packages::find(&dir)
}

/// The files scripts/package.sh wrote.
struct Packages {
    deb: PathBuf,
    rpm: PathBuf,
    sbom: PathBuf,
    sums: PathBuf,
}

impl Packages {
    fn find(dir: &Path) -> Packages {
        let one = |suffix: &str| -> PathBuf {
            let found: Vec<PathBuf> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect();
            assert_eq!(
                found.len(),
                1,
                "{}: want exactly one *{suffix}, found {found:?}",
                dir.display()
            );
            let p = found.into_iter().next().unwrap();
            assert!(
                fs::metadata(&p).unwrap().len() > 0,
                "{} is empty",
                p.display()
            );
            p
        };
        let arch = stdout(run("dpkg", &["--print-architecture"]));
        let p = Packages {
            deb: one(&format!("_{VERSION}-1_{}.deb", arch.trim())),
            rpm: one(&format!("-{VERSION}-1.{}.rpm", std::env::consts::ARCH)),
            sbom: one(".cdx.json"),
            sums: dir.join("SHA256SUMS"),
        };
        assert!(p.sums.is_file(), "{} is missing", p.sums.display());
        p
    }
}

/// Runs a tool; a tool that cannot start fails the test, naming the installer.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool}: {e}; install the package tools with bash scripts/install-test-deps.sh")
        })
}

/// Its stdout, after checking it succeeded.
fn stdout(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The regular files of the .deb, as absolute paths, with their modes.
fn deb_files(deb: &Path) -> BTreeMap<String, String> {
    deb_entries(deb).0
}

/// The .deb's regular files (path → mode) and symlinks (path → target).
fn deb_entries(deb: &Path) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let list = stdout(run("dpkg-deb", &["-c", p(deb)]));
    let (mut files, mut links) = (BTreeMap::new(), BTreeMap::new());
    for line in list.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mode = fields[0];
        if mode.starts_with('l') {
            let (left, target) = line.split_once(" -> ").expect("a symlink's target");
            let path = left.split_whitespace().last().unwrap();
            links.insert(path.trim_start_matches('.').to_string(), target.to_string());
            continue;
        }
        let path = *fields.last().unwrap();
        assert!(
            mode.starts_with('-') || mode.starts_with('d'),
            "only files, directories and the upstream names' symlinks belong in the .deb: {line}"
        );
        if mode.starts_with('-') {
            files.insert(path.trim_start_matches('.').to_string(), mode.to_string());
        }
    }
    (files, links)
}

/// The upstream plugins' names the binary answers to, each a symlink to it beside it.
fn upstream_links() -> BTreeMap<String, String> {
    kubelet_keyring::upstream::plugins()
        .into_iter()
        .flat_map(|p| p.names.iter())
        .map(|n| {
            (
                format!("/usr/libexec/kubelet-credential-providers/{n}"),
                "kubelet-keyring".to_string(),
            )
        })
        .collect()
}

/// The files of the .rpm with their sha256 and mode (`rpm -qp --dump`).
fn rpm_files(rpm: &Path) -> BTreeMap<String, (String, u32)> {
    let listed: BTreeSet<String> = stdout(run("rpm", &["-qlp", p(rpm)]))
        .lines()
        .map(str::to_string)
        .collect();
    let dump = stdout(run("rpm", &["-qp", "--dump", p(rpm)]));
    let mut files = BTreeMap::new();
    for line in dump.lines() {
        // path size mtime digest mode owner group isconfig isdoc rdev symlink
        let f: Vec<&str> = line.split_whitespace().collect();
        let mode = u32::from_str_radix(f[4], 8).unwrap();
        assert_eq!(mode & 0o170000, 0o100000, "not a regular file: {line}");
        files.insert(f[0].to_string(), (f[3].to_string(), mode & 0o7777));
    }
    assert_eq!(
        listed,
        files.keys().cloned().collect::<BTreeSet<_>>(),
        "rpm -qlp and rpm --dump disagree"
    );
    files
}

/// What both packages must hold, from the repository itself.
fn expected_files() -> BTreeSet<String> {
    let mut want: BTreeSet<String> = [
        BIN_PATH,
        "/usr/share/man/man1/kubelet-keyring.1.gz",
        "/usr/share/bash-completion/completions/kubelet-keyring",
        ZSH_DEB,
        "/usr/share/fish/vendor_completions.d/kubelet-keyring.fish",
        "/usr/share/doc/kubelet-keyring/copyright",
        "/usr/share/doc/kubelet-keyring/README.md",
        "/usr/share/doc/kubelet-keyring/examples/20-kubelet-keyring.conf",
        "/usr/share/doc/kubelet-keyring/examples/kubelet-keyring-metrics.service",
        "/usr/share/doc/kubelet-keyring/examples/kubelet-keyring-metrics.timer",
        "/usr/share/doc/kubelet-keyring/examples/kubelet-keyring-alerts.yml",
    ]
    .map(str::to_string)
    .into();
    let mut configs = 0;
    for e in fs::read_dir(repo().join("config")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") {
            want.insert(format!("{DOC}/examples/{name}"));
            configs += 1;
        }
    }
    assert!(configs >= 5, "only {configs} example configs in config/");
    want
}

#[test]
#[ignore = "needs dpkg-deb and the packages of scripts/package.sh"]
fn the_deb_holds_the_files_and_metadata_and_no_maintainer_scripts() {
    let pk = packages();
    let (files, links) = deb_entries(&pk.deb);
    let mut want = expected_files();
    want.extend(DEB_ONLY.map(str::to_string));
    assert_eq!(files.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(links, upstream_links());
    assert!(files[BIN_PATH].starts_with("-rwxr-xr-x"), "{files:?}");
    for (path, mode) in &files {
        if path != BIN_PATH {
            assert!(mode.starts_with("-rw-r--r--"), "{path}: {mode}");
        }
    }

    let field = |name: &str| stdout(run("dpkg-deb", &["-f", p(&pk.deb), name]));
    assert_eq!(field("Package").trim(), NAME);
    assert_eq!(field("Version").trim(), format!("{VERSION}-1"));
    let arch = stdout(run("dpkg", &["--print-architecture"]));
    assert_eq!(field("Architecture").trim(), arch.trim());
    assert!(field("Maintainer").contains('@'));
    assert!(field("Description").contains("credential provider"));
    assert_eq!(
        field("Depends").trim(),
        "",
        "a static binary depends on nothing"
    );

    // Nothing runs at install or removal time: no service enabled, no kubelet flag changed.
    let tmp = tempfile::tempdir().unwrap();
    let ctrl = tmp.path().join("DEBIAN");
    stdout(run("dpkg-deb", &["-e", p(&pk.deb), p(&ctrl)]));
    let mut control: Vec<String> = fs::read_dir(&ctrl)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    control.sort();
    // dpkg-deb writes no md5sums by itself (lintian: info only); never a maintainer script.
    assert!(control.contains(&"control".to_string()), "{control:?}");
    assert!(
        control.iter().all(|f| f == "control" || f == "md5sums"),
        "maintainer scripts in the .deb: {control:?}"
    );
    assert!(
        files.keys().all(|f| !f.starts_with("/etc/")),
        "no conffile, no drop-in enabled: {files:?}"
    );

    let root = tmp.path().join("root");
    stdout(run("dpkg-deb", &["-x", p(&pk.deb), p(&root)]));
    let copyright = fs::read_to_string(root.join(&DOC[1..]).join("copyright")).unwrap();
    assert!(copyright.contains("License: Apache-2.0"), "{copyright}");
    assert!(copyright.contains("/usr/share/common-licenses/Apache-2.0"));
}

#[test]
#[ignore = "needs lintian and the packages of scripts/package.sh"]
fn lintian_finds_no_error_in_the_deb() {
    let pk = packages();
    let version = stdout(run("lintian", &["--version"]));
    let out = run(
        "lintian",
        &["--tag-display-limit", "0", "--display-info", p(&pk.deb)],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{}{text}{}", version, String::from_utf8_lossy(&out.stderr));
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    assert!(out.status.success(), "lintian failed: {out:?}");
}

#[test]
#[ignore = "needs rpm and the packages of scripts/package.sh"]
fn the_rpm_holds_the_same_files_with_the_same_bytes_as_the_deb() {
    let pk = packages();
    let rpm = rpm_files(&pk.rpm);
    let deb: BTreeSet<String> = deb_files(&pk.deb)
        .into_keys()
        .filter(|f| !DEB_ONLY.contains(&f.as_str()))
        .map(|f| if f == ZSH_DEB { ZSH_RPM.to_string() } else { f })
        .collect();
    assert_eq!(rpm.keys().cloned().collect::<BTreeSet<_>>(), deb);
    assert_eq!(rpm[BIN_PATH].1, 0o755);

    // The same bytes: every rpm digest against the file unpacked from the .deb.
    let tmp = tempfile::tempdir().unwrap();
    stdout(run("dpkg-deb", &["-x", p(&pk.deb), p(tmp.path())]));
    for (path, (digest, _)) in &rpm {
        let in_deb = if path == ZSH_RPM { ZSH_DEB } else { path };
        let bytes = fs::read(tmp.path().join(&in_deb[1..])).unwrap();
        assert_eq!(&sha256_hex(&bytes), digest, "{path}");
    }

    let q = |fmt: &str| stdout(run("rpm", &["-qp", "--qf", fmt, p(&pk.rpm)]));
    assert_eq!(
        q("%{NAME} %{VERSION}-%{RELEASE}"),
        format!("{NAME} {VERSION}-1")
    );
    assert_eq!(q("%{LICENSE}"), "Apache-2.0");
    assert_eq!(q("%{ARCH}"), std::env::consts::ARCH);
    // The only scriptlets: the upstream names' symlinks, made on install and removed on
    // erase (scripts/package.sh).
    let scripts = stdout(run("rpm", &["-qp", "--scripts", p(&pk.rpm)]));
    // rpm prints `postinstall scriptlet:` or `... scriptlet (using /bin/sh):` by version.
    let sections: Vec<&str> = scripts
        .lines()
        .filter(|l| l.contains(" scriptlet") && l.ends_with(':'))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(sections, ["postinstall", "postuninstall"], "{scripts}");
    for link in upstream_links().keys() {
        let name = link.rsplit('/').next().unwrap();
        assert_eq!(
            scripts.matches(&format!(" {name}")).count(),
            2,
            "{name}: {scripts}"
        );
    }
}

#[test]
#[ignore = "needs rust-audit-info and the packages of scripts/package.sh"]
fn the_packaged_binary_lists_its_dependencies_and_the_sbom_names_them() {
    let pk = packages();
    let tmp = tempfile::tempdir().unwrap();
    stdout(run("dpkg-deb", &["-x", p(&pk.deb), p(tmp.path())]));
    let bin = tmp.path().join(&BIN_PATH[1..]);
    let info: Value = serde_json::from_str(&stdout(run("rust-audit-info", &[p(&bin)]))).unwrap();
    let names: BTreeSet<&str> = info["packages"]
        .as_array()
        .expect("rust-audit-info: no packages array")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for krate in CRATES.iter().chain(&[NAME, "keyring-ecr", "keyring-gcp"]) {
        assert!(names.contains(krate), "{krate} not in {names:?}");
    }

    let sbom: Value = serde_json::from_slice(&fs::read(&pk.sbom).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let components: BTreeSet<&str> = sbom["components"]
        .as_array()
        .expect("SBOM: no components")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for krate in CRATES {
        assert!(components.contains(krate), "{krate} not in the SBOM");
    }

    // SHA256SUMS covers the three artifacts, and they match.
    let sums = fs::read_to_string(&pk.sums).unwrap();
    let mut listed = BTreeSet::new();
    for line in sums.lines() {
        let (digest, name) = line.split_once("  ").unwrap();
        let bytes = fs::read(pk.sums.parent().unwrap().join(name)).unwrap();
        assert_eq!(sha256_hex(&bytes), digest, "{name}");
        listed.insert(name.to_string());
    }
    let names: BTreeSet<String> = [&pk.deb, &pk.rpm, &pk.sbom]
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_string())
        .into();
    assert_eq!(listed, names);
}

/// Purges the package when the install test ends, passed or not.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", NAME]).output();
    }
}

#[test]
#[ignore = "needs root, dpkg and the packages of scripts/package.sh"]
fn dpkg_installs_answers_the_demo_request_and_removes_every_file() {
    let pk = packages();
    assert!(
        rustix::process::geteuid().is_root(),
        "installing the .deb needs root"
    );
    let status = |name: &str| {
        let out = run("dpkg-query", &["-W", "-f=${db:Status-Abbrev}", name]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(
        !status(NAME).starts_with("ii"),
        "{NAME} is installed on this machine already; the test would remove it"
    );
    let files = deb_files(&pk.deb);
    for f in files.keys() {
        assert!(!Path::new(f).exists(), "{f} exists before the install");
    }
    let dirs = [
        "/usr/libexec/kubelet-credential-providers",
        DOC,
        "/etc/systemd/system/kubelet.service.d/20-kubelet-keyring.conf",
    ];
    for d in dirs {
        assert!(!Path::new(d).exists(), "{d} exists before the install");
    }

    let _purge = Purge;
    stdout(run("dpkg", &["-i", p(&pk.deb)]));
    assert_eq!(status(NAME), "ii");
    for f in files.keys() {
        assert!(Path::new(f).is_file(), "{f} not installed");
    }
    // Under each upstream name, the installed binary answers as that plugin.
    for link in upstream_links().keys() {
        let name = link.rsplit('/').next().unwrap();
        let version = stdout(run(link, &["--help"]));
        assert!(
            version.starts_with(&format!("{name} ({NAME} {VERSION}")),
            "{link}: {version}"
        );
    }
    assert!(
        !Path::new("/etc/systemd/system/kubelet.service.d/20-kubelet-keyring.conf").exists(),
        "the package must not enable the drop-in"
    );

    // The installed binary answers the README's demo request as the kubelet would ask it.
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN_PATH)
        .env_clear()
        .env("HOME", home.path())
        .arg("--root-dir")
        .arg(repo().join("examples/demo/kubelet-root"))
        .arg("--no-cache")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let req = fs::read(repo().join("examples/demo/request.json")).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &req).unwrap();
    drop(child.stdin.take());
    let json: Value = serde_json::from_str(&stdout(child.wait_with_output().unwrap())).unwrap();
    assert_eq!(json["kind"], "CredentialProviderResponse");
    assert_eq!(json["apiVersion"], "credentialprovider.kubelet.k8s.io/v1");
    let auth = &json["auth"]["registry.example.com"];
    assert_eq!(auth["username"], "demo-robot");
    assert_eq!(auth["password"], "demo-password");
    let version = stdout(run(BIN_PATH, &["--version"]));
    assert!(
        version.starts_with(&format!("{NAME} {VERSION} ")),
        "{version}"
    );

    // The man page and the completions are the installed binary's own.
    let man = stdout(run(
        "gzip",
        &["-dc", "/usr/share/man/man1/kubelet-keyring.1.gz"],
    ));
    assert_eq!(man, stdout(run(BIN_PATH, &["man"])));
    for (shell, path) in [
        (
            "bash",
            "/usr/share/bash-completion/completions/kubelet-keyring",
        ),
        ("zsh", ZSH_DEB),
        (
            "fish",
            "/usr/share/fish/vendor_completions.d/kubelet-keyring.fish",
        ),
    ] {
        let installed = fs::read_to_string(path).unwrap();
        assert_eq!(
            installed,
            stdout(run(BIN_PATH, &["completions", shell])),
            "{path}"
        );
    }

    stdout(run("dpkg", &["-r", NAME]));
    for f in files.keys().chain(upstream_links().keys()) {
        assert!(
            fs::symlink_metadata(f).is_err(),
            "{f} left behind by dpkg -r"
        );
    }
    for d in dirs {
        assert!(!Path::new(d).exists(), "{d} left behind by dpkg -r");
    }
    // No conffiles, so nothing is kept for a purge either.
    let left = status(NAME);
    assert!(
        left.is_empty() || left.starts_with("un") || left.starts_with("pn"),
        "dpkg still knows {NAME} after dpkg -r: {left:?}"
    );
}
