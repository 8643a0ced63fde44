//! `kubelet-keyring validate-config FILE`: checks a kubelet `CredentialProviderConfig`
//! (the file or directory named by the kubelet's `--image-credential-provider-config`) the way
//! the kubelet will, before the kubelet refuses to start over it.
//!
//! * Decoding as the kubelet does ([`decode`]): kind and apiVersion, strict fields with their
//!   paths (`providers[0].unknownField`), JSON types (`defaultCacheDuration: 0` is a number).
//! * Every validation rule, with the kubelet's messages ([`rules`]), all of them, each prefixed
//!   with the entry (`providers[1] (name "ecr")`) because the kubelet's paths carry no index.
//! * Directory mode (kubelet 1.34+): direct `*.json`, `*.yaml`, `*.yml` entries, sorted,
//!   merged; a name used twice is an error; no such file is an error.
//! * Warnings for configs that pass but do not do what they seem to ([`traps`]).
//! * `--kubelet-version 1.NN` (default: the newest known) and `--feature-gates` pick the
//!   kubelet's behaviour ([`kubelet`]).
//!
//! Output: `error: ...` and `warning: ...` lines and a summary line on stdout (or one JSON
//! document with `--json`). Exit 0 when the kubelet would accept the config (warnings
//! allowed), 1 when it would refuse it, 2 for usage errors and unreadable paths. No `env`
//! value is ever printed: those may hold secrets.

pub mod decode;
pub mod kubelet;
pub mod rules;
pub mod traps;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exit::Failure;
use decode::Provider;
pub use kubelet::{FeatureGates, Kubelet, KubeletVersion};

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
}

/// Runs the subcommand: prints the report, fails (exit 1) when the config is invalid.
pub fn run(args: &ValidateArgs) -> Result<(), Failure> {
    let mut gates = FeatureGates::default();
    for g in &args.feature_gates {
        gates.extend(g);
    }
    let (kubelet, gate_warnings) = Kubelet::new(args.kubelet_version, &gates);
    let report = check(
        &args.path,
        &kubelet,
        &gate_warnings,
        args.bin_dir.as_deref(),
    )?;
    let text = if args.json {
        report.to_json()
    } else {
        report.to_text()
    };
    write_report(&text)?;
    match report.errors() {
        0 => Ok(()),
        n => Err(Failure::Internal(format!(
            "{}: kubelet {} would refuse this credential provider config ({})",
            args.path.display(),
            kubelet.version,
            plural(n, "error")
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

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The kubelet refuses the config.
    Error,
    /// Accepted, but probably not what was meant.
    Warning,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Index into [`Report::files`], when it concerns one file.
    pub file: Option<usize>,
    /// Index of the provider within its file.
    pub provider: Option<usize>,
    /// The provider's name, when it decoded.
    pub name: Option<String>,
    /// The field, when the message does not name it (`providers.matchImages`, `matchImages[2]`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A provider as read, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSummary {
    /// Index into [`Report::files`].
    pub file: usize,
    /// Index within that file.
    pub index: usize,
    /// `name`.
    pub name: String,
    /// `apiVersion` (the protocol version).
    pub api_version: String,
}

/// The outcome of a check.
#[derive(Debug, Clone)]
pub struct Report {
    /// The path checked.
    pub path: PathBuf,
    /// Whether it was a directory.
    pub directory: bool,
    /// The kubelet checked for.
    pub kubelet: Kubelet,
    /// The files read, in merge order.
    pub files: Vec<PathBuf>,
    /// The merged providers.
    pub providers: Vec<ProviderSummary>,
    /// Errors and warnings, in the order found.
    pub findings: Vec<Finding>,
}

/// Checks the file or directory at `path` for `kubelet`. Fails only when `path` (or a file
/// in it) cannot be read; everything wrong with the contents is in the report.
pub fn check(
    path: &Path,
    kubelet: &Kubelet,
    kubelet_warnings: &[String],
    bin_dir: Option<&Path>,
) -> Result<Report, Failure> {
    if path.as_os_str().is_empty() {
        return Err(Failure::BadInput(
            "credential provider config path is empty".into(),
        ));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::BadInput(format!("unable to access path {}: {e}", path.display())))?;
    let mut report = Report {
        path: path.to_path_buf(),
        directory: meta.is_dir(),
        kubelet: kubelet.clone(),
        files: Vec::new(),
        providers: Vec::new(),
        findings: Vec::new(),
    };
    for w in kubelet_warnings {
        report.push(Severity::Warning, None, None, None, w.clone());
    }
    if report.directory {
        if !kubelet.reads_directories() {
            report.push(
                Severity::Error,
                None,
                None,
                None,
                format!(
                    "{} is a directory: kubelet {} reads a single file (directories need \
                     kubelet 1.34+)",
                    path.display(),
                    kubelet.version
                ),
            );
            return Ok(report);
        }
        let (files, skipped) = config_files(path)?;
        for name in skipped {
            report.push(
                Severity::Warning,
                None,
                None,
                None,
                format!(
                    "{} is not read: only direct *.json, *.yaml and *.yml files are \
                     (the extension is case-sensitive)",
                    path.join(name).display()
                ),
            );
        }
        if files.is_empty() {
            report.push(
                Severity::Error,
                None,
                None,
                None,
                format!(
                    "no configuration files found in directory {}",
                    go_quote(&path.display().to_string())
                ),
            );
            return Ok(report);
        }
        report.files = files;
    } else {
        report.files = vec![path.to_path_buf()];
    }

    let mut providers: Vec<Provider> = Vec::new();
    let mut any_fatal = false;
    for fi in 0..report.files.len() {
        let bytes = read_file(&report.files[fi])?;
        let Ok(text) = String::from_utf8(bytes) else {
            any_fatal = true;
            report.push(
                Severity::Error,
                Some(fi),
                None,
                None,
                "the file is not UTF-8 text".into(),
            );
            continue;
        };
        let decoded = decode::decode(&text, kubelet);
        any_fatal |= decoded.fatal;
        let name_of = |i: Option<usize>| {
            i.and_then(|i| decoded.providers.get(i))
                .filter(|p| p.decoded("name"))
                .map(|p| p.name.clone())
        };
        for (severity, list) in [
            (Severity::Error, &decoded.errors),
            (Severity::Warning, &decoded.warnings),
        ] {
            for p in list {
                report.findings.push(Finding {
                    severity,
                    file: Some(fi),
                    provider: p.provider,
                    name: name_of(p.provider),
                    field: p.field.clone(),
                    message: p.message.clone(),
                });
            }
        }
        for (index, p) in decoded.providers.into_iter().enumerate() {
            report.providers.push(ProviderSummary {
                file: fi,
                index,
                name: p.name.clone(),
                api_version: p.api_version.clone(),
            });
            providers.push(p);
        }
    }

    let refs: Vec<&Provider> = providers.iter().collect();
    if kubelet.reads_directories() {
        // 1.34+ merges the files first and stops at a name seen before, in any file.
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, p) in refs.iter().enumerate() {
            if !p.decoded("name") {
                continue;
            }
            let Some(&j) = first.get(p.name.as_str()) else {
                first.insert(&p.name, k);
                continue;
            };
            let earlier = &report.providers[j];
            let place = if report.directory {
                format!(" in {}", report.files[earlier.file].display())
            } else {
                String::new()
            };
            let message = format!(
                "duplicate provider name {} found in configuration file(s) (first used by \
                 providers[{}]{place})",
                go_quote(&p.name),
                earlier.index
            );
            report.push_for(k, Severity::Error, None, message);
        }
    }
    let options = rules::Options {
        duplicate_names: !kubelet.reads_directories(),
        empty_list: !any_fatal,
    };
    for e in rules::validate(&refs, kubelet, options) {
        match e.provider {
            Some(k) => report.push_for(k, Severity::Error, Some(e.path), e.body),
            None => report.push(Severity::Error, None, None, Some(e.path), e.body),
        }
    }
    for w in traps::check(&refs, bin_dir) {
        match w.provider {
            Some(k) => report.push_for(k, Severity::Warning, w.field, w.message),
            None => report.push(Severity::Warning, None, None, w.field, w.message),
        }
    }
    // Whole-config findings first, then file by file and entry by entry, each in the order
    // found (decoding, merging, validation).
    report
        .findings
        .sort_by_key(|f| (f.file.map(|i| i + 1), f.provider.map(|i| i + 1)));
    Ok(report)
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
        // As Go's DirEntry.IsDir: a symlink is not a directory here, whatever it points at.
        if entry.file_type().map_err(unreadable)?.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let text = name.to_string_lossy();
        // filepath.Ext: from the last dot of the name.
        let ext = text.rfind('.').map_or("", |i| &text[i..]);
        if [".json", ".yaml", ".yml"].contains(&ext) {
            files.push(dir.join(&name));
        } else {
            let lower = text.to_lowercase();
            if [".json", ".yaml", ".yml"].iter().any(|e| lower.contains(e)) {
                skipped.push(text.into_owned());
            }
        }
    }
    files.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    skipped.sort();
    Ok((files, skipped))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let unreadable = |e: std::io::Error| {
        Failure::BadInput(format!("unable to read file {}: {e}", path.display()))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Failure::BadInput(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes: not a credential provider config",
            path.display()
        )));
    }
    Ok(bytes)
}

impl Report {
    fn push(
        &mut self,
        severity: Severity,
        file: Option<usize>,
        provider: Option<usize>,
        field: Option<String>,
        message: String,
    ) {
        self.findings.push(Finding {
            severity,
            file,
            provider,
            name: None,
            field,
            message,
        });
    }

    /// A finding about merged provider `k`.
    fn push_for(&mut self, k: usize, severity: Severity, field: Option<String>, message: String) {
        let (file, provider, name) = match self.providers.get(k) {
            Some(p) => (Some(p.file), Some(p.index), Some(p.name.clone())),
            None => (None, None, None),
        };
        self.findings.push(Finding {
            severity,
            file,
            provider,
            name,
            field,
            message,
        });
    }

    /// How many errors.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// How many warnings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// A finding without its severity: `[file: ][providers[i] (name "n"): ][field: ]message`.
    pub fn line(&self, f: &Finding) -> String {
        let mut out = String::new();
        if let (true, Some(file)) = (self.directory, f.file.and_then(|i| self.files.get(i))) {
            out.push_str(&format!("{}: ", file.display()));
        }
        if let Some(i) = f.provider {
            out.push_str(&format!("providers[{i}]"));
            if let Some(name) = &f.name {
                out.push_str(&format!(" (name {})", go_quote(name)));
            }
            out.push_str(": ");
        }
        if let Some(field) = &f.field {
            out.push_str(field);
            out.push_str(": ");
        }
        out.push_str(&f.message);
        out
    }

    /// The last line: verdict and counts.
    pub fn summary(&self) -> String {
        let (errors, warnings) = (self.errors(), self.warnings());
        let what = format!(
            "{} from {}",
            plural(self.providers.len(), "provider"),
            plural(self.files.len(), "file")
        );
        if errors == 0 {
            format!(
                "{}: valid for kubelet {} ({what}), {}",
                self.path.display(),
                self.kubelet.version,
                plural(warnings, "warning")
            )
        } else {
            format!(
                "{}: INVALID for kubelet {} ({what}): {}, {}",
                self.path.display(),
                self.kubelet.version,
                plural(errors, "error"),
                plural(warnings, "warning")
            )
        }
    }

    /// The text report: errors, then warnings, then the summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for severity in [Severity::Error, Severity::Warning] {
            for f in self.findings.iter().filter(|f| f.severity == severity) {
                let label = match severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                out.push_str(&format!("{label}: {}\n", self.line(f)));
            }
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The JSON report.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Json<'a> {
            path: String,
            valid: bool,
            kubelet_version: String,
            feature_gates: BTreeMap<&'static str, bool>,
            files: Vec<String>,
            providers: Vec<JsonProvider<'a>>,
            errors: Vec<JsonFinding<'a>>,
            warnings: Vec<JsonFinding<'a>>,
            summary: String,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct JsonProvider<'a> {
            file: String,
            index: usize,
            name: &'a str,
            api_version: &'a str,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct JsonFinding<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            file: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            provider: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
            message: &'a str,
            text: String,
        }
        let file_name = |i: usize| {
            self.files
                .get(i)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let findings = |severity| {
            self.findings
                .iter()
                .filter(|f| f.severity == severity)
                .map(|f| JsonFinding {
                    file: f.file.map(file_name),
                    provider: f.provider,
                    name: f.name.as_deref(),
                    field: f.field.as_deref(),
                    message: &f.message,
                    text: self.line(f),
                })
                .collect()
        };
        let json = Json {
            path: self.path.display().to_string(),
            valid: self.errors() == 0,
            kubelet_version: self.kubelet.version.to_string(),
            feature_gates: self.kubelet.gates(),
            files: self.files.iter().map(|p| p.display().to_string()).collect(),
            providers: self
                .providers
                .iter()
                .map(|p| JsonProvider {
                    file: file_name(p.file),
                    index: p.index,
                    name: &p.name,
                    api_version: &p.api_version,
                })
                .collect(),
            errors: findings(Severity::Error),
            warnings: findings(Severity::Warning),
            summary: self.summary(),
        };
        // Serializing plain strings, numbers and maps cannot fail.
        let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Go's `strconv.Quote` (the `%q` in the kubelet's messages): the plugin API's, which the
/// differential test checks against Go.
pub fn go_quote(s: &str) -> String {
    keyring_api::go_quote(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a"), r#""a""#);
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(go_quote("t\tn\n\u{1}\u{7f}"), r#""t\tn\n\x01\x7f""#);
        assert_eq!(go_quote("é\u{a0}"), "\"é\\u00a0\"");
        assert_eq!(go_quote(""), "\"\"");
    }

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
        let r = check(d, &newest(), &[], None).unwrap();
        assert_eq!(r.findings, []);
        let names: Vec<&str> = r.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(r.files.len(), 2);
        assert!(r
            .summary()
            .contains("valid for kubelet 1.35 (2 providers from 2 files), 0 warnings"));
    }

    #[test]
    fn directory_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Nothing to read.
        write(d, "x.txt", "");
        let r = check(d, &newest(), &[], None).unwrap();
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
        let r = check(d, &newest(), &[], None).unwrap();
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
        let r = check(d, &old, &[], None).unwrap();
        assert_eq!(r.errors(), 1);
        assert!(lines(&r)[0].contains("kubelet 1.33 reads a single file"));
    }

    #[test]
    fn duplicate_names_in_one_file_by_release() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        std::fs::write(
            &f,
            format!("{HEADER}providers:\n{}{}", provider("x"), provider("x")),
        )
        .unwrap();
        let r = check(&f, &newest(), &[], None).unwrap();
        assert_eq!(
            lines(&r),
            [
                r#"providers[1] (name "x"): duplicate provider name "x" found in configuration file(s) (first used by providers[0])"#
            ]
        );
        let old = Kubelet::new(KubeletVersion::new(33), &FeatureGates::default()).0;
        let r = check(&f, &old, &[], None).unwrap();
        assert_eq!(
            lines(&r),
            [r#"providers[1] (name "x"): providers.name: Duplicate value: "x""#]
        );
    }

    #[test]
    fn unreadable_paths_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.yaml");
        let e = check(&missing, &newest(), &[], None).unwrap_err();
        assert!(
            matches!(e, Failure::BadInput(ref m) if m.starts_with("unable to access path")),
            "{e}"
        );
        assert!(matches!(
            check(Path::new(""), &newest(), &[], None),
            Err(Failure::BadInput(_))
        ));
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            check(&big, &newest(), &[], None),
            Err(Failure::BadInput(_))
        ));
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
        let r = check(&f, &newest(), &["a gate warning".into()], None).unwrap();
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
