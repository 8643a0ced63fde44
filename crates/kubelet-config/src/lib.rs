//! The kubelet's `CredentialProviderConfig`, checked the way the kubelet will read it: the
//! library behind `kubelet-keyring validate-config`.
//!
//! * Decoding as the kubelet does ([`decode`]): kind and apiVersion, strict fields with their
//!   paths (`providers[0].unknownField`), JSON types (`defaultCacheDuration: 0` is a number).
//! * Every validation rule, with the kubelet's messages ([`rules`]), all of them, each prefixed
//!   with the entry (`providers[1] (name "ecr")`) because the kubelet's paths carry no index.
//! * Directory mode (kubelet 1.34+): the files merged in the order given; a name used twice is
//!   an error; no file is an error.
//! * Warnings for configs that pass but do not do what they seem to ([`traps`]).
//! * Which kubelet: its minor release and feature gates ([`kubelet`]).
//! * The outcome as a [`Report`] ([`report`]), rendered as text lines or one JSON document.
//!
//! Contract: this crate reads no config file and writes nothing. The caller reads the path
//! (file, or directory listing picked with [`directory_entry`]) and hands over the bytes as a
//! [`Source`]; [`check`] never fails, everything wrong with the contents is a finding. The one
//! filesystem access is the optional `--bin-dir` probe of [`traps`]. Whether kubelet-keyring
//! itself accepts an entry's `args` is the caller's to say ([`traps::EntryCheck`]): the CLI
//! lives in the binary. No `env` value is ever put in a report: those may hold secrets.

pub mod decode;
pub mod kubelet;
pub mod report;
pub mod rules;
pub mod traps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use decode::Provider;
pub use kubelet::{FeatureGates, Kubelet, KubeletVersion};
pub use report::{Finding, ProviderSummary, Report, Severity};

/// What the caller read at the checked path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A single file's bytes.
    File(Vec<u8>),
    /// A directory. Ignored (may be empty) for a kubelet that does not read directories: that
    /// alone is the error.
    Directory {
        /// The files the kubelet reads ([`DirectoryEntry::Read`]), in name order, with their
        /// bytes.
        files: Vec<(PathBuf, Vec<u8>)>,
        /// Names it skips that look meant to be read ([`DirectoryEntry::Skipped`]), sorted.
        skipped: Vec<String>,
    },
}

/// What the kubelet (1.34+) does with one entry of a config directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryEntry {
    /// Read and merged.
    Read,
    /// Not read, but the name suggests it was meant to be (`a.YAML`, `b.yaml.bak`): warned.
    Skipped,
    /// Not read, nothing said.
    Ignored,
}

/// Classifies a directory entry by its file name, as the kubelet does. `is_dir` is Go's
/// `DirEntry.IsDir`: a symlink is not a directory, whatever it points at.
pub fn directory_entry(name: &str, is_dir: bool) -> DirectoryEntry {
    if is_dir {
        return DirectoryEntry::Ignored;
    }
    // filepath.Ext: from the last dot of the name; the extension is case-sensitive.
    let ext = name.rfind('.').map_or("", |i| &name[i..]);
    if [".json", ".yaml", ".yml"].contains(&ext) {
        return DirectoryEntry::Read;
    }
    let lower = name.to_lowercase();
    if [".json", ".yaml", ".yml"].iter().any(|e| lower.contains(e)) {
        DirectoryEntry::Skipped
    } else {
        DirectoryEntry::Ignored
    }
}

/// Checks what was read at `path` (a file or a directory, see [`Source`]) for `kubelet`.
/// `kubelet_warnings` (from [`Kubelet::new`]) head the report; `traps` configures the
/// warnings that need more than the config. Everything wrong with the contents is in the
/// report: this cannot fail.
pub fn check(
    path: &Path,
    source: Source,
    kubelet: &Kubelet,
    kubelet_warnings: &[String],
    traps: &traps::Options<'_>,
) -> Report {
    let directory = matches!(source, Source::Directory { .. });
    let mut report = Report {
        path: path.to_path_buf(),
        directory,
        kubelet: kubelet.clone(),
        files: Vec::new(),
        providers: Vec::new(),
        findings: Vec::new(),
    };
    for w in kubelet_warnings {
        report.push_general(Severity::Warning, w.clone());
    }
    let contents: Vec<Vec<u8>> = match source {
        Source::Directory { files, skipped } => {
            if !kubelet.reads_directories() {
                report.push_general(
                    Severity::Error,
                    format!(
                        "{} is a directory: kubelet {} reads a single file (directories need \
                     kubelet 1.34+)",
                        path.display(),
                        kubelet.version
                    ),
                );
                return report;
            }
            for name in skipped {
                report.push_general(
                    Severity::Warning,
                    format!(
                        "{} is not read: only direct *.json, *.yaml and *.yml files are \
                     (the extension is case-sensitive)",
                        path.join(name).display()
                    ),
                );
            }
            if files.is_empty() {
                report.push_general(
                    Severity::Error,
                    format!(
                        "no configuration files found in directory {}",
                        go_quote(&path.display().to_string())
                    ),
                );
                return report;
            }
            let contents;
            (report.files, contents) = files.into_iter().unzip();
            contents
        }
        Source::File(bytes) => {
            report.files = vec![path.to_path_buf()];
            vec![bytes]
        }
    };

    let mut providers: Vec<Provider> = Vec::new();
    let mut any_fatal = false;
    for (fi, bytes) in contents.into_iter().enumerate() {
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
    for w in traps::check(&refs, traps) {
        match w.provider {
            Some(k) => report.push_for(k, w.severity, w.field, w.message),
            None => report.push(w.severity, None, None, w.field, w.message),
        }
    }
    // Whole-config findings first, then file by file and entry by entry, each in the order
    // found (decoding, merging, validation).
    report
        .findings
        .sort_by_key(|f| (f.file.map(|i| i + 1), f.provider.map(|i| i + 1)));
    report
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

    #[test]
    fn directory_entries_are_picked_like_the_kubelet_does() {
        use DirectoryEntry::*;
        for (name, is_dir, want) in [
            ("b.yaml", false, Read),
            ("a.json", false, Read),
            ("c.yml", false, Read),
            (".hidden.yaml", false, Read),
            ("d.txt", false, Ignored),
            ("README.md", false, Ignored),
            ("e.YAML", false, Skipped),
            ("f.yaml.bak", false, Skipped),
            ("sub.yaml", true, Ignored),
        ] {
            assert_eq!(directory_entry(name, is_dir), want, "{name}");
        }
    }

    const HEADER: &str = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n";

    fn provider(name: &str) -> String {
        format!(
            "- name: {name}\n  matchImages: [\"{name}.example.com\"]\n  defaultCacheDuration: 1m\n  \
             apiVersion: credentialprovider.kubelet.k8s.io/v1\n"
        )
    }

    #[test]
    fn a_directory_is_merged_in_the_order_given_and_names_are_unique_across_files() {
        let file = |name: &str, text: String| (PathBuf::from(name), text.into_bytes());
        let source = Source::Directory {
            files: vec![
                file("d/1.yaml", format!("{HEADER}providers:\n{}", provider("x"))),
                file("d/2.yaml", format!("{HEADER}providers:\n{}", provider("x"))),
                (PathBuf::from("d/3.yaml"), vec![0xff]),
            ],
            skipped: vec!["a.YAML".into()],
        };
        let options = traps::Options::default();
        let r = check(
            Path::new("d"),
            source.clone(),
            &Kubelet::newest(),
            &[],
            &options,
        );
        let lines: Vec<String> = r.findings.iter().map(|f| r.line(f)).collect();
        assert_eq!(
            lines,
            [
                "d/a.YAML is not read: only direct *.json, *.yaml and *.yml files are (the \
                 extension is case-sensitive)",
                r#"d/2.yaml: providers[0] (name "x"): duplicate provider name "x" found in configuration file(s) (first used by providers[0] in d/1.yaml)"#,
                "d/3.yaml: the file is not UTF-8 text",
            ]
        );
        let old = Kubelet::new(KubeletVersion::new(33), &FeatureGates::default()).0;
        let r = check(Path::new("d"), source, &old, &[], &options);
        assert_eq!(r.errors(), 1);
        assert!(r.files.is_empty());
        assert!(r
            .line(&r.findings[0])
            .contains("kubelet 1.33 reads a single file"));
    }
}
