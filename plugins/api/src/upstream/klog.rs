//! klog's flags: every one that klog v2 and component-base register, each accepted under
//! every upstream name ([`KLOG_FLAGS`]), and which of them each Go plugin itself registers
//! ([`Klog`]).

use super::{Fate, Flag, Takes};

/// klog's `--log-file` and `--log_file` are one flag (component-base registers the dashed
/// spellings, klog the underscored ones); both are accepted.
pub(super) fn alias(long: &str) -> Option<&'static str> {
    Some(match long {
        "log_file" => "log-file",
        "log_dir" => "log-dir",
        "log_file_max_size" => "log-file-max-size",
        "log_backtrace_at" => "log-backtrace-at",
        "add_dir_header" => "add-dir-header",
        "skip_headers" => "skip-headers",
        "skip_log_headers" => "skip-log-headers",
        "one_output" => "one-output",
        _ => return None,
    })
}

const LOG_FORMAT: &str =
    "klog's output format; logs here always go to stderr, which the kubelet reads";

/// Which of klog's flags an upstream plugin registers, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Klog {
    /// None (`ecr-credential-provider`): `--v=3` is an unknown flag upstream, and cobra exits 1.
    None,
    /// component-base's `logs.AddFlags`, called in this file (`acr-credential-provider`):
    /// [`COMPONENT_BASE_FLAGS`], underscore spellings.
    ComponentBase(&'static str),
    /// `klog.InitFlags`, called in this file (`auth-provider-gcp`): [`KLOG_INIT_FLAGS`],
    /// underscore spellings only (`--log-dir` is an unknown flag there).
    InitFlags(&'static str),
}

/// What component-base's `logs.AddFlags` registers: klog's `v` and `vmodule` (through
/// `logs/klogflags`, which drops the rest) and its own `log-flush-frequency`.
pub const COMPONENT_BASE_FLAGS: &[&str] = &["v", "vmodule", "log-flush-frequency"];

/// What `klog.InitFlags` registers (klog v2.140, `vendor/k8s.io/klog/v2/klog.go` `init`).
pub const KLOG_INIT_FLAGS: &[&str] = &[
    "log_dir",
    "log_file",
    "log_file_max_size",
    "logtostderr",
    "alsologtostderr",
    "legacy_stderr_threshold_behavior",
    "v",
    "add_dir_header",
    "skip_headers",
    "one_output",
    "skip_log_headers",
    "stderrthreshold",
    "alsologtostderrthreshold",
    "vmodule",
    "log_backtrace_at",
];

impl Klog {
    /// Whether the Go program registers klog's flag `long` (as spelled in [`KLOG_FLAGS`]).
    pub fn registers(self, long: &str) -> bool {
        match self {
            Klog::None => false,
            Klog::ComponentBase(_) => COMPONENT_BASE_FLAGS.contains(&long),
            Klog::InitFlags(_) => KLOG_INIT_FLAGS.contains(&long),
        }
    }
}

const KLOG_GO: &str = "vendor/k8s.io/klog/v2/klog.go";

const NO_FILES: &str = "logs are not written to files; they go to stderr, which the kubelet reads";

/// A flag of `klog.go` (no shorthand) accepted with a warning: every row of [`KLOG_FLAGS`]
/// but `v`, the two from elsewhere overriding `source`.
const fn warned(long: &'static str, takes: Takes, note: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        takes,
        fate: Fate::Warned,
        note,
        source: KLOG_GO,
    }
}

/// The flags klog v2 registers (`klog.InitFlags`) and component-base's `logs.AddFlags` adds,
/// plus `--logging-format` (component-base's `LoggingConfiguration`, which no upstream plugin
/// registers). `-v`/`--v` is honoured as verbosity (see [`verbosity`](super::verbosity)); the rest shape
/// klog's output, which this program does not have, so they are accepted with a warning.
/// Their `source` is the file that defines them (`""` for `logging-format`).
pub const KLOG_FLAGS: &[Flag] = &[
    Flag {
        long: "v",
        short: Some('v'),
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "log verbosity: 0-1 warnings and errors, 2-3 info, 4-5 debug, 6+ trace",
        source: KLOG_GO,
    },
    warned(
        "vmodule",
        Takes::Value,
        "per-file verbosity has no equivalent; use --v",
    ),
    warned("logtostderr", Takes::Bool, LOG_FORMAT),
    warned("alsologtostderr", Takes::Bool, LOG_FORMAT),
    warned("alsologtostderrthreshold", Takes::Value, LOG_FORMAT),
    warned("stderrthreshold", Takes::Value, LOG_FORMAT),
    warned("legacy_stderr_threshold_behavior", Takes::Bool, LOG_FORMAT),
    warned("log_dir", Takes::Value, NO_FILES),
    warned("log_file", Takes::Value, NO_FILES),
    warned(
        "log_file_max_size",
        Takes::Value,
        "logs are not written to files",
    ),
    warned(
        "log_backtrace_at",
        Takes::Value,
        "Go stack traces have no equivalent",
    ),
    warned("add_dir_header", Takes::Bool, LOG_FORMAT),
    warned("skip_headers", Takes::Bool, LOG_FORMAT),
    warned("skip_log_headers", Takes::Bool, LOG_FORMAT),
    warned("one_output", Takes::Bool, LOG_FORMAT),
    Flag {
        source: "vendor/k8s.io/component-base/logs/logs.go",
        ..warned(
            "log-flush-frequency",
            Takes::Value,
            "logs are written unbuffered",
        )
    },
    Flag {
        source: "",
        ..warned("logging-format", Takes::Value, LOG_FORMAT)
    },
];
