//! `kubelet-keyring validate-config FILE`: checks a kubelet `CredentialProviderConfig`
//! (the file or directory named by the kubelet's `--image-credential-provider-config`) the way
//! the kubelet will, before the kubelet refuses to start over it.
//!
//! The checking (decoding, the kubelet's rules by release and feature gates, the warnings,
//! the report) is the `keyring-kubelet-config` crate; this module is its edge: the flags,
//! reading the file or directory (which names a directory holds is the crate's
//! [`directory_entry`] to decide), the check of provider `args` against this program's own
//! CLI, writing the report to stdout, and turning the outcome into an exit code.
//!
//! Output: `error: ...` and `warning: ...` lines and a summary line on stdout (or one JSON
//! document with `--json`). Exit 0 when the kubelet would accept the config (warnings
//! allowed), 1 when it would refuse it, 2 for usage errors and unreadable paths. No `env`
//! value is ever printed: those may hold secrets.
//!
//! For an entry that runs this program, the plugin config it names (`--config` in its
//! `args`, or `KUBELET_KEYRING_CONFIG` in its `env`; `--plugin-config` instead) is loaded when
//! it exists here, and each backend checks its section against the entry
//! ([`keyring_api::Configurable::kubelet_findings`]: the identity rules' hosts, audiences,
//! annotations and `cacheType`), as are the `mirrors:` sources against `matchImages`. A plugin
//! config that does not load is a warning: every pull would exit 2.
//!
//! `--rbac` prints, instead of the report of a valid config, the RBAC that a cluster with
//! `ServiceAccountNodeAudienceRestriction` needs for the kubelet to request the entries'
//! service-account token audiences ([`rbac_yaml`]).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use keyring_kubelet_config::{directory_entry, DirectoryEntry};
pub use keyring_kubelet_config::{traps, FeatureGates, Kubelet, KubeletVersion, Report, Source};

use crate::exit::Failure;

mod plugin_config;

use plugin_config::{entry_findings, plugin_config_for, Used};
pub use plugin_config::{rbac_yaml, RBAC_NAME};

/// Largest config file read; the kubelet's are a few kilobytes.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// `validate-config` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// The kubelet's --image-credential-provider-config: a file, or (kubelet 1.34+) a
    /// directory whose *.json, *.yaml and *.yml files are merged in name order.
    #[arg(value_name = "FILE")]
    pub path: PathBuf,

    /// The kubelet release to check for: which config and protocol versions it knows, whether
    /// it has tokenAttributes (1.33+) and cacheType (1.34+), whether FILE may be a directory
    /// (1.34+). Accepts 1.34, v1.34.2, ... [default: the newest known]
    #[arg(long, value_name = "1.NN", default_value_t = KubeletVersion::NEWEST, hide_default_value = true)]
    pub kubelet_version: KubeletVersion,

    /// The kubelet's --feature-gates (Name=bool,...). Read here:
    /// KubeletServiceAccountTokenForCredentialProviders (tokenAttributes; on by default from
    /// 1.34) and KubeletCredentialProviders (1.20-1.27). Repeatable; later settings win.
    #[arg(long, value_name = "GATES")]
    pub feature_gates: Vec<FeatureGates>,

    /// The kubelet's --image-credential-provider-bin-dir: warn about providers whose
    /// executable is missing there.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Print one JSON report instead of text lines.
    #[arg(long)]
    pub json: bool,

    /// The plugin config (kubelet-keyring's own --config) to check the entries that run
    /// kubelet-keyring against, instead of the file their args or env name (which is checked
    /// when it exists here).
    #[arg(long, value_name = "FILE")]
    pub plugin_config: Option<PathBuf>,

    /// Print, for a valid config, the RBAC (ClusterRole and ClusterRoleBinding, YAML for
    /// kubectl apply) that lets the kubelet request the entries' service-account token
    /// audiences under ServiceAccountNodeAudienceRestriction, instead of the report.
    #[arg(long)]
    pub rbac: bool,
}

/// Runs the subcommand: prints the report, fails (exit 1) when the config is invalid.
/// `entry_check` says what this program does with an entry that runs it (the CLI is the
/// caller's: `cli` passes its own, so this module need not import it).
pub fn run(args: &ValidateArgs, entry_check: &traps::EntryCheck<'_>) -> Result<(), Failure> {
    let mut gates = FeatureGates::default();
    for g in &args.feature_gates {
        gates.extend(g);
    }
    let (kubelet, gate_warnings) = Kubelet::new(args.kubelet_version, &gates);
    let given = match &args.plugin_config {
        None => None,
        Some(p) => Some(Rc::new(
            crate::config::Config::load(Some(p))
                .map_err(|e| Failure::BadInput(format!("--plugin-config: {e}")))?,
        )),
    };
    let audiences = RefCell::new(BTreeSet::new());
    let used = RefCell::new(Vec::<Used>::new());
    let with_plugin_config = |entry: &traps::Entry<'_>| {
        if let Some(t) = entry.token_attributes {
            if !t.service_account_token_audience.is_empty() {
                audiences
                    .borrow_mut()
                    .insert(t.service_account_token_audience.clone());
            }
        }
        let mut out = entry_check(entry);
        if entry.runs_self {
            let found = plugin_config_for(entry, given.as_ref(), &used.borrow());
            match found {
                Ok(None) => {}
                Err(w) => out.push(w),
                Ok(Some((label, config))) => {
                    out.extend(entry_findings(&label, &config, entry));
                    let mut used = used.borrow_mut();
                    match used.iter_mut().find(|u| u.label == label) {
                        Some(u) => u.match_images.extend_from_slice(entry.match_images),
                        None => used.push(Used {
                            label,
                            config,
                            match_images: entry.match_images.to_vec(),
                        }),
                    }
                }
            }
        }
        out
    };
    let mut report = check(
        &args.path,
        &kubelet,
        &gate_warnings,
        args.bin_dir.as_deref(),
        Some(&with_plugin_config),
    )?;
    for u in used.into_inner() {
        for message in u.unadmitted() {
            report.push_general(keyring_kubelet_config::Severity::Warning, message);
        }
    }
    let text = match (args.rbac && report.errors() == 0, args.json) {
        (true, _) => rbac_yaml(&audiences.borrow()),
        (false, true) => report.to_json(),
        (false, false) => report.to_text(),
    };
    write_report(&text)?;
    match report.errors() {
        0 => Ok(()),
        n => Err(Failure::Internal(format!(
            "{}: kubelet {} would refuse this credential provider config ({})",
            args.path.display(),
            kubelet.version,
            if n == 1 {
                "1 error".to_string()
            } else {
                format!("{n} errors")
            }
        ))),
    }
}

/// The one place this subcommand writes to stdout: the report is its output.
#[allow(clippy::print_stdout)]
fn write_report(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Internal(format!("cannot write the report to stdout: {e}")))
}

/// Reads the file or directory at `path` and checks it for `kubelet`. Fails (exit 2) only
/// when `path` (or a file in it) cannot be read; everything wrong with the contents is in the
/// report. `entry_check`: see [`traps::Options::entry_check`].
pub fn check(
    path: &Path,
    kubelet: &Kubelet,
    kubelet_warnings: &[String],
    bin_dir: Option<&Path>,
    entry_check: Option<&traps::EntryCheck<'_>>,
) -> Result<Report, Failure> {
    if path.as_os_str().is_empty() {
        return Err(Failure::BadInput(
            "credential provider config path is empty".into(),
        ));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::BadInput(format!("unable to access path {}: {e}", path.display())))?;
    let source = if !meta.is_dir() {
        Source::File(read_file(path)?)
    } else if kubelet.reads_directories() {
        let (names, skipped) = config_files(path)?;
        let files = names
            .into_iter()
            .map(|name| read_file(&name).map(|bytes| (name, bytes)))
            .collect::<Result<_, _>>()?;
        Source::Directory { files, skipped }
    } else {
        // That it is a directory is the whole finding: nothing in it is read.
        Source::Directory {
            files: Vec::new(),
            skipped: Vec::new(),
        }
    };
    let options = traps::Options {
        bin_dir,
        entry_check,
    };
    Ok(keyring_kubelet_config::check(
        path,
        source,
        kubelet,
        kubelet_warnings,
        &options,
    ))
}

/// The files the kubelet reads from a directory, sorted, and the names it skips that look
/// meant to be read (`a.YAML`, `b.yaml.bak`).
fn config_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>), Failure> {
    let unreadable = |e: std::io::Error| {
        Failure::BadInput(format!("unable to read directory {}: {e}", dir.display()))
    };
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let is_dir = entry.file_type().map_err(unreadable)?.is_dir();
        let name = entry.file_name();
        let text = name.to_string_lossy();
        match directory_entry(&text, is_dir) {
            DirectoryEntry::Read => files.push(dir.join(&name)),
            DirectoryEntry::Skipped => skipped.push(text.into_owned()),
            DirectoryEntry::Ignored => {}
        }
    }
    files.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    skipped.sort();
    Ok((files, skipped))
}

/// The bytes of one config file: a regular file (a FIFO, device or directory in its place is
/// exit 2 at once, never a hang), at most [`MAX_FILE_BYTES`], nested no deeper than the
/// plugin's own config may be ([`keyring_api::nesting::check_nesting`]: the YAML parser crawls on
/// deep nesting).
fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = keyring_api::file::read(path, MAX_FILE_BYTES).map_err(|e| {
        Failure::BadInput(match e.kind() {
            std::io::ErrorKind::FileTooLarge => format!(
                "{} is larger than {MAX_FILE_BYTES} bytes: not a credential provider config",
                path.display()
            ),
            _ => format!("unable to read file {}: {e}", path.display()),
        })
    })?;
    keyring_api::nesting::check_nesting(&bytes).map_err(|e| {
        Failure::BadInput(format!(
            "{}: {e}: not a credential provider config",
            path.display()
        ))
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const HEADER: &str = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n";

    fn provider(name: &str) -> String {
        format!(
            "- name: {name}\n  matchImages: [\"{name}.example.com\"]\n  defaultCacheDuration: 1m\n  \
             apiVersion: credentialprovider.kubelet.k8s.io/v1\n"
        )
    }

    fn newest() -> Kubelet {
        Kubelet::newest()
    }

    fn lines(r: &Report) -> Vec<String> {
        r.findings.iter().map(|f| r.line(f)).collect()
    }

    #[test]
    fn directory_files_are_picked_like_the_kubelet_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [
            "b.yaml",
            "a.json",
            "c.yml",
            ".hidden.yaml",
            "d.txt",
            "README.md",
            "e.YAML",
            "f.yaml.bak",
        ] {
            write(d, name, "");
        }
        std::fs::create_dir(d.join("sub.yaml")).unwrap();
        let (files, skipped) = config_files(d).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [".hidden.yaml", "a.json", "b.yaml", "c.yml"]);
        assert_eq!(skipped, ["e.YAML", "f.yaml.bak"]);
    }

    #[test]
    fn directory_merge_in_name_order_with_mixed_versions() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "20-b.yaml",
            &format!("{HEADER}providers:\n{}", provider("b")),
        );
        write(
            d,
            "10-a.json",
            r#"{"apiVersion":"kubelet.config.k8s.io/v1alpha1","kind":"CredentialProviderConfig","providers":[{"name":"a","matchImages":["a.io"],"defaultCacheDuration":"1m","apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1"}]}"#,
        );
        write(d, "notes.txt", "not yaml: [");
        let r = check(d, &newest(), &[], None, None).unwrap();
        assert_eq!(r.findings, []);
        let names: Vec<&str> = r.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(r.files.len(), 2);
        assert!(r
            .summary()
            .contains("valid for kubelet 1.35 (2 providers from 2 files), 0 warnings"));
    }

    #[test]
    fn a_directory_with_nothing_to_read_or_a_duplicate_name_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Nothing to read.
        write(d, "x.txt", "");
        let r = check(d, &newest(), &[], None, None).unwrap();
        assert_eq!(r.errors(), 1);
        assert!(lines(&r)[0].starts_with("no configuration files found in directory"));
        // The same name in two files; an error in one file names that file.
        write(
            d,
            "1.yaml",
            &format!("{HEADER}providers:\n{}", provider("dup")),
        );
        write(
            d,
            "2.yaml",
            &format!(
                "{HEADER}providers:\n{}{}  bogus: 1\n",
                provider("ok"),
                provider("dup")
            ),
        );
        let r = check(d, &newest(), &[], None, None).unwrap();
        let l = lines(&r);
        assert_eq!(l.len(), 2, "{l:?}");
        let two = d.join("2.yaml").display().to_string();
        let one = d.join("1.yaml").display().to_string();
        assert_eq!(
            l[0],
            format!(
                r#"{two}: providers[1] (name "dup"): strict decoding error: unknown field "providers[1].bogus""#
            )
        );
        assert_eq!(
            l[1],
            format!(
                r#"{two}: providers[1] (name "dup"): duplicate provider name "dup" found in configuration file(s) (first used by providers[0] in {one})"#
            )
        );
        // Older kubelets read one file.
        let old = Kubelet::new(KubeletVersion::new(33), &FeatureGates::default()).0;
        let r = check(d, &old, &[], None, None).unwrap();
        assert_eq!(r.errors(), 1);
        assert!(lines(&r)[0].contains("kubelet 1.33 reads a single file"));
    }

    #[test]
    fn duplicate_names_in_one_file_are_reported_as_each_release_words_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        std::fs::write(
            &f,
            format!("{HEADER}providers:\n{}{}", provider("x"), provider("x")),
        )
        .unwrap();
        let r = check(&f, &newest(), &[], None, None).unwrap();
        assert_eq!(
            lines(&r),
            [
                r#"providers[1] (name "x"): duplicate provider name "x" found in configuration file(s) (first used by providers[0])"#
            ]
        );
        let old = Kubelet::new(KubeletVersion::new(33), &FeatureGates::default()).0;
        let r = check(&f, &old, &[], None, None).unwrap();
        assert_eq!(
            lines(&r),
            [r#"providers[1] (name "x"): providers.name: Duplicate value: "x""#]
        );
    }

    #[test]
    fn unreadable_paths_fifos_and_deep_nesting_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.yaml");
        let e = check(&missing, &newest(), &[], None, None).unwrap_err();
        assert!(
            matches!(e, Failure::BadInput(ref m) if m.starts_with("unable to access path")),
            "{e}"
        );
        assert!(matches!(
            check(Path::new(""), &newest(), &[], None, None),
            Err(Failure::BadInput(_))
        ));
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            check(&big, &newest(), &[], None, None),
            Err(Failure::BadInput(_))
        ));
        let fifo = dir.path().join("fifo.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.expect("mkfifo").success());
        let e = check(&fifo, &newest(), &[], None, None).unwrap_err();
        assert!(
            e.to_string().ends_with("not a regular file (a FIFO)"),
            "{e}"
        );
        let deep = dir.path().join("deep.json");
        std::fs::write(&deep, format!("{}{}", "[".repeat(200), "]".repeat(200))).unwrap();
        let e = check(&deep, &newest(), &[], None, None).unwrap_err();
        assert!(
            e.to_string().contains("nested deeper than 64 levels"),
            "{e}"
        );
    }

    #[test]
    fn findings_are_grouped_by_entry_and_json_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        let text = format!(
            "{HEADER}providers:\n- name: a\n  matchImages: [\"%zz\", \"*.docker.io\"]\n  defaultCacheDuration: 1m\n  \
             apiVersion: credentialprovider.kubelet.k8s.io/v1\n  env:\n  - name: SECRET\n    value: 123456789\n\
             - name: b\n  matchImages: []\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  defaultCacheDuration: 1m\n"
        );
        std::fs::write(&f, text).unwrap();
        let r = check(&f, &newest(), &["a gate warning".into()], None, None).unwrap();
        let text = r.to_text();
        let l: Vec<&str> = text.lines().collect();
        assert_eq!(l.len(), 6, "{text}");
        assert_eq!(l[0], "error: providers[0] (name \"a\"): providers[0].env[0].value: json: cannot unmarshal number into Go value of type string; quote the value");
        assert!(l[1].starts_with("error: providers[0] (name \"a\"): providers.matchImages: Invalid value: \"%zz\": match image is invalid: parse \"https://%zz\": invalid URL escape \"%zz\""), "{}", l[1]);
        assert_eq!(l[2], "error: providers[1] (name \"b\"): providers.matchImages: Required value: at least 1 item in matchImages is required");
        assert_eq!(l[3], "warning: a gate warning");
        assert!(
            l[4].starts_with(
                "warning: providers[0] (name \"a\"): matchImages[1]: \"*.docker.io\" never matches"
            ),
            "{}",
            l[4]
        );
        assert!(
            l[5].ends_with(
                "c.yaml: INVALID for kubelet 1.35 (2 providers from 1 file): 3 errors, 2 warnings"
            ),
            "{}",
            l[5]
        );
        assert!(!text.contains("123456789"));

        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["valid"], false);
        assert_eq!(json["kubeletVersion"], "1.35");
        assert_eq!(
            json["featureGates"]["KubeletServiceAccountTokenForCredentialProviders"],
            true
        );
        assert_eq!(json["providers"][1]["name"], "b");
        assert_eq!(json["errors"].as_array().unwrap().len(), 3);
        assert_eq!(json["errors"][1]["provider"], 0);
        assert_eq!(json["errors"][1]["name"], "a");
        assert_eq!(json["errors"][1]["field"], "providers.matchImages");
        assert_eq!(json["warnings"][1]["field"], "matchImages[1]");
        assert!(json["warnings"][0].get("provider").is_none());
        assert!(!r.to_json().contains("123456789"));
    }
}
