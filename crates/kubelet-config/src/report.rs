//! The outcome of a check: its findings (errors, warnings, notes), each tied to a file and
//! an entry where it concerns one, rendered as text lines or one JSON document.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::go_quote;
use crate::kubelet::Kubelet;

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The kubelet refuses the config.
    Error,
    /// Accepted, but probably not what was meant.
    Warning,
    /// Nothing wrong: how an entry will run (the upstream flags kubelet-keyring takes, and
    /// what it does differently from the plugin it answers for).
    Note,
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

impl Report {
    pub(crate) fn push(
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

    /// A finding about the config as a whole (no file, entry or field): one of [`crate::check`]
    /// or of a check outside this crate.
    pub fn push_general(&mut self, severity: Severity, message: String) {
        self.push(severity, None, None, None, message);
    }

    /// A finding about merged provider `k`.
    pub(crate) fn push_for(
        &mut self,
        k: usize,
        severity: Severity,
        field: Option<String>,
        message: String,
    ) {
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

    /// The text report: errors, then warnings, then notes, then the summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for severity in [Severity::Error, Severity::Warning, Severity::Note] {
            for f in self.findings.iter().filter(|f| f.severity == severity) {
                let label = match severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                    Severity::Note => "note",
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
            notes: Vec<JsonFinding<'a>>,
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
            notes: findings(Severity::Note),
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
