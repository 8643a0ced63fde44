//! The command lines of the upstream Go plugins, so that this binary can answer under their
//! names (`ecr-credential-provider`, `auth-provider-gcp`, `acr-credential-provider`) with the
//! `args` and `env` that node images already put in the kubelet's config.
//!
//! Each backend crate describes its upstream plugin as a [`Plugin`]: the executable names,
//! every flag the Go program registers (its own and the logging flags it inherits) and every
//! environment variable it reads, each with a [`Fate`]:
//!
//! * [`Fate::Honoured`]: accepted with the upstream meaning;
//! * [`Fate::Warned`]: accepted with one warning line on stderr, because ignoring it cannot
//!   change which credentials come back (log formatting, for example);
//! * [`Fate::Refused`]: exit 2 with a line that names it and says what to do.
//!
//! Every row also names its *upstream source*: the file of the upstream repository (or of the
//! Go module it builds with) where the Go program registers the flag or reads the variable, or
//! nothing when upstream has no such flag or variable and this program takes it as an extra.
//! klog's flags ([`KLOG_FLAGS`]) are accepted under every name; which of them the Go program
//! itself registers is the plugin's [`Klog`].
//!
//! [`parse`] reads a command line as Go's `pflag` does (`--name=value`, `--name value`,
//! `-n value`, `-nvalue`, boolean `--name` or `--name=false`, `--` ends the flags), plus the
//! single-dash long form Go's `flag` package accepts for the logging flags (`-v=3`,
//! `-logtostderr`). What a flag *does* is the backend's business: its crate turns the
//! [`Parsed`] flags into its own config. Nothing here does I/O.

use crate::error::{BackendError, ErrorKind};

mod klog;

use klog::alias;
pub use klog::{Klog, COMPONENT_BASE_FLAGS, KLOG_FLAGS, KLOG_INIT_FLAGS};

/// What happens to an upstream flag or variable here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Accepted, with the upstream meaning.
    Honoured,
    /// Accepted with one warning on stderr; it cannot change the credentials.
    Warned,
    /// Refused: exit 2, naming it.
    Refused,
}

impl Fate {
    /// `honoured`, `warned` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Honoured => "honoured",
            Fate::Warned => "warned",
            Fate::Refused => "refused",
        }
    }
}

/// Whether a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// A boolean: `--name`, `--name=true|false`.
    Bool,
    /// A value: `--name=v`, `--name v`.
    Value,
}

/// One flag of an upstream plugin.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// The long name, without dashes, as the Go program spells it (`authFlow`, `log_dir`).
    pub long: &'static str,
    /// The one-letter shorthand, if any.
    pub short: Option<char>,
    /// Boolean or valued.
    pub takes: Takes,
    /// What happens to it.
    pub fate: Fate,
    /// For honoured flags, what it does here; for warned ones, why ignoring it is harmless;
    /// for refused ones, what to do instead. One sentence, shown by `validate-config`, in the
    /// warning or error line, and in docs/migrating.md.
    pub note: &'static str,
    /// Where upstream registers it: a file of the upstream repository (`cmd/.../main.go`,
    /// `vendor/...`), or of the Go module it builds with when the repository does not vendor
    /// it; `""` when upstream has no such flag (an extra here). For [`KLOG_FLAGS`], the file
    /// that defines the flag; whether a plugin registers it is its [`Klog`]'s business.
    pub source: &'static str,
}

/// cobra's `-h/--help`, which every upstream plugin has; `source` is the file that builds
/// the plugin's cobra command.
pub const fn help(source: &'static str) -> Flag {
    Flag {
        long: "help",
        short: Some('h'),
        takes: Takes::Bool,
        fate: Fate::Honoured,
        note: "prints the usage and exits",
        source,
    }
}

/// One environment variable an upstream plugin reads.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// The name (a trailing `*` stands for a family, `AWS_*`).
    pub name: &'static str,
    /// What happens to it.
    pub fate: Fate,
    /// As for [`Flag::note`].
    pub note: &'static str,
    /// As for [`Flag::source`]: where upstream reads it, `""` when it never does (an extra
    /// here).
    pub source: &'static str,
}

/// Whether a table's variable `pattern` (a name, or a prefix ending in `*`) covers `name`.
pub fn env_covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// What an upstream plugin does with positional arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positionals {
    /// Any number, all ignored (`ecr-credential-provider get-credentials`).
    Ignored,
    /// Exactly this subcommand word, which may also be absent here (upstream requires it).
    Subcommand(&'static str),
    /// At most one: a file path (the ACR plugin's cloud config).
    OneFile,
}

/// An upstream plugin's command-line surface.
#[derive(Debug, Clone, Copy)]
pub struct Plugin {
    /// The backend that answers for it (`ecr`, `gcp`, `acr`).
    pub backend: &'static str,
    /// The executable names it is installed as; the first is the upstream's own.
    pub names: &'static [&'static str],
    /// Its own flags.
    pub flags: &'static [Flag],
    /// Which of klog's flags ([`KLOG_FLAGS`]) it registers. All of them are accepted under
    /// every name regardless (a flag a node image passes is never refused for being
    /// unexpected); the others are extras of this program.
    pub klog: Klog,
    /// The environment it reads.
    pub env: &'static [EnvVar],
    /// What its positional arguments are.
    pub positionals: Positionals,
    /// What this backend does differently from the plugin under its name, where an operator
    /// would notice (one sentence each): `validate-config` and the migration guide say them.
    pub differences: &'static [&'static str],
}

impl Plugin {
    /// Whether `file_name` (a path's last component, `.exe` ignored) names this plugin.
    pub fn answers_to(&self, file_name: &str) -> bool {
        let name = file_name.strip_suffix(".exe").unwrap_or(file_name);
        self.names.contains(&name)
    }

    /// The flag spelled `name` (long, without dashes) among its own and klog's flags.
    pub fn flag(&self, name: &str) -> Option<&'static Flag> {
        self.flags
            .iter()
            .chain(KLOG_FLAGS)
            .find(|f| f.long == name || alias(f.long) == Some(name))
    }

    /// Where upstream registers `flag` (one of its own or of [`KLOG_FLAGS`]): its source, and
    /// for a klog flag also where the plugin registers klog's; `None` when the Go program has
    /// no such flag, so that it is an extra here (upstream exits 1 on it).
    pub fn flag_source(&self, flag: &Flag) -> Option<String> {
        let own = self.flags.iter().any(|f| f.long == flag.long);
        if own {
            return (!flag.source.is_empty()).then(|| flag.source.to_string());
        }
        if !self.klog.registers(flag.long) {
            return None;
        }
        match self.klog {
            Klog::None => None,
            Klog::ComponentBase(at) => Some(format!("{at} (logs.AddFlags); {}", flag.source)),
            Klog::InitFlags(at) => Some(format!("{at} (klog.InitFlags); {}", flag.source)),
        }
    }

    fn short(&self, c: char) -> Option<&'static Flag> {
        self.flags
            .iter()
            .chain(KLOG_FLAGS)
            .find(|f| f.short == Some(c))
    }
}

/// One parsed flag: its description and its value (`None` for a bare boolean).
#[derive(Debug, Clone)]
pub struct Given {
    /// The flag.
    pub flag: &'static Flag,
    /// The value as written; a bare boolean has none.
    pub value: Option<String>,
}

/// A command line read against a [`Plugin`].
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Flags in the order given.
    pub flags: Vec<Given>,
    /// Positional arguments in order.
    pub positionals: Vec<String>,
}

impl Parsed {
    /// The last value given for the flag `long` (Go's flags keep the last), or `None`.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|g| g.flag.long == long)
            .and_then(|g| g.value.as_deref())
    }

    /// Whether the flag `long` was given (and, for a boolean, not `=false`).
    pub fn is_set(&self, long: &str) -> bool {
        match self.flags.iter().rev().find(|g| g.flag.long == long) {
            None => false,
            Some(g) if g.flag.takes == Takes::Bool => !matches!(
                g.value.as_deref(),
                Some("false" | "0" | "f" | "F" | "FALSE" | "False")
            ),
            Some(_) => true,
        }
    }

    /// Every flag given whose fate is [`Fate::Warned`], once each.
    pub fn warned(&self) -> Vec<&'static Flag> {
        let mut out: Vec<&'static Flag> = Vec::new();
        for g in &self.flags {
            if g.flag.fate == Fate::Warned && !out.iter().any(|f| f.long == g.flag.long) {
                out.push(g.flag);
            }
        }
        out
    }
}

/// The error for a bad upstream command line (exit 2).
fn usage(plugin: &Plugin, message: String) -> BackendError {
    BackendError::new(plugin.backend, ErrorKind::Misconfigured, message)
}

/// Reads `args` (without the program name) as the upstream plugin's command line.
///
/// Unknown flags, missing values, malformed booleans, refused flags and positionals the
/// plugin does not take are errors that name the argument (never its value, which might be
/// a secret someone put on a command line).
pub fn parse(plugin: &Plugin, args: &[String]) -> Result<Parsed, BackendError> {
    let mut parsed = Parsed::default();
    let mut args = args.iter();
    let mut flags_done = false;
    while let Some(arg) = args.next() {
        if flags_done || arg == "-" || !arg.starts_with('-') {
            parsed.positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            flags_done = true;
            continue;
        }
        let (flag, inline, shown) = if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = split_value(body);
            let flag = plugin
                .flag(name)
                .ok_or_else(|| usage(plugin, format!("unknown flag --{name}")))?;
            (flag, inline, format!("--{name}"))
        } else {
            let body = &arg[1..];
            let (name, inline) = split_value(body);
            // Go's `flag` package takes klog's long names after one dash (`-v=3`,
            // `-logtostderr`); pflag takes a shorthand followed by its value (`-v3`).
            if let Some(flag) = plugin
                .flag(name)
                .filter(|f| f.long.len() > 1 || inline.is_some())
            {
                (flag, inline, format!("-{name}"))
            } else {
                let mut chars = body.chars();
                let c = chars.next().unwrap_or('-');
                let flag = plugin
                    .short(c)
                    .ok_or_else(|| usage(plugin, format!("unknown shorthand flag -{c}")))?;
                let rest = chars.as_str();
                let inline = match rest.strip_prefix('=') {
                    Some(v) => Some(v),
                    None if rest.is_empty() => None,
                    None if flag.takes == Takes::Value => Some(rest),
                    None => {
                        return Err(usage(
                            plugin,
                            format!(
                                "-{c} takes no value; combined shorthand flags are not supported"
                            ),
                        ))
                    }
                };
                (flag, inline, format!("-{c}"))
            }
        };
        if flag.fate == Fate::Refused {
            return Err(usage(
                plugin,
                format!("{shown} is not supported: {}", flag.note),
            ));
        }
        let value = match (flag.takes, inline) {
            (Takes::Value, Some(v)) => Some(v.to_string()),
            (Takes::Value, None) => Some(
                args.next()
                    .ok_or_else(|| usage(plugin, format!("flag needs an argument: {shown}")))?
                    .clone(),
            ),
            (Takes::Bool, Some(v)) => {
                if parse_go_bool(v).is_none() {
                    return Err(usage(
                        plugin,
                        format!("invalid boolean value for {shown} (true or false)"),
                    ));
                }
                Some(v.to_string())
            }
            (Takes::Bool, None) => None,
        };
        parsed.flags.push(Given { flag, value });
    }
    match plugin.positionals {
        Positionals::Ignored => {}
        Positionals::Subcommand(word) => {
            if let Some(p) = parsed.positionals.iter().find(|p| *p != word) {
                let shown: String = p.chars().take(64).collect();
                return Err(usage(
                    plugin,
                    format!("unexpected argument {shown:?}; the only subcommand is {word}"),
                ));
            }
        }
        Positionals::OneFile => {
            if parsed.positionals.len() > 1 {
                return Err(usage(
                    plugin,
                    format!(
                        "{} positional arguments; at most one (the cloud config file) is taken",
                        parsed.positionals.len()
                    ),
                ));
            }
        }
    }
    Ok(parsed)
}

fn split_value(body: &str) -> (&str, Option<&str>) {
    match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The verbosity `--v=N` asks for, mapped onto this program's `-v` count (0 warnings, 1
/// info, 2 debug, 3 trace). `Err` names a value that is not a number, as klog would refuse
/// it.
pub fn verbosity(parsed: &Parsed, plugin: &Plugin) -> Result<u8, BackendError> {
    let Some(v) = parsed.value("v") else {
        return Ok(0);
    };
    let n: u32 = v.parse().map_err(|_| {
        usage(
            plugin,
            format!("invalid value for --v: {v:?} is not a number"),
        )
    })?;
    Ok(match n {
        0..=1 => 0,
        2..=3 => 1,
        4..=5 => 2,
        _ => 3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    static OWN: &[Flag] = &[
        Flag {
            long: "authFlow",
            short: Some('a'),
            takes: Takes::Value,
            fate: Fate::Honoured,
            note: "",
            source: "cmd/x/main.go",
        },
        Flag {
            long: "secretish",
            short: None,
            takes: Takes::Value,
            fate: Fate::Refused,
            note: "use the config file",
            source: "",
        },
    ];
    static PLUGIN: Plugin = Plugin {
        backend: "gcp",
        names: &["auth-provider-gcp", "gcr-credential-provider"],
        flags: OWN,
        klog: Klog::InitFlags("cmd/x/main.go"),
        env: &[],
        positionals: Positionals::Subcommand("get-credentials"),
        differences: &[],
    };

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_klog_set_registers_its_own_flags_and_the_rest_are_extras_without_a_source() {
        // Every name of the two Go sets is a row of KLOG_FLAGS.
        for name in KLOG_INIT_FLAGS.iter().chain(COMPONENT_BASE_FLAGS) {
            assert!(KLOG_FLAGS.iter().any(|f| f.long == *name), "{name}");
        }
        let klog = |name: &str| KLOG_FLAGS.iter().find(|f| f.long == name).unwrap();
        let with = |k: Klog| Plugin { klog: k, ..PLUGIN };
        // klog.InitFlags: underscore names, no log-flush-frequency, no logging-format.
        let gcp = with(Klog::InitFlags("cmd/g/main.go"));
        assert_eq!(
            gcp.flag_source(klog("log_dir")).as_deref(),
            Some("cmd/g/main.go (klog.InitFlags); vendor/k8s.io/klog/v2/klog.go")
        );
        assert_eq!(gcp.flag_source(klog("log-flush-frequency")), None);
        assert_eq!(gcp.flag_source(klog("logging-format")), None);
        // component-base: v, vmodule, log-flush-frequency only.
        let acr = with(Klog::ComponentBase("cmd/a/main.go"));
        assert_eq!(
            acr.flag_source(klog("log-flush-frequency")).as_deref(),
            Some("cmd/a/main.go (logs.AddFlags); vendor/k8s.io/component-base/logs/logs.go")
        );
        assert!(acr.flag_source(klog("v")).is_some());
        assert_eq!(acr.flag_source(klog("log_dir")), None);
        // None: even --v is an extra.
        let ecr = with(Klog::None);
        assert!(KLOG_FLAGS.iter().all(|f| ecr.flag_source(f).is_none()));
        // Still accepted under every name.
        assert!(parse(&ecr, &args(&["--v=3", "--log_dir=/x"])).is_ok());
        // A plugin's own flag has its own source; "" is an extra.
        assert_eq!(
            PLUGIN.flag_source(&OWN[0]).as_deref(),
            Some("cmd/x/main.go")
        );
        assert_eq!(PLUGIN.flag_source(&OWN[1]), None);
    }

    #[test]
    fn names_ignore_exe() {
        assert!(PLUGIN.answers_to("auth-provider-gcp"));
        assert!(PLUGIN.answers_to("auth-provider-gcp.exe"));
        assert!(PLUGIN.answers_to("gcr-credential-provider"));
        assert!(!PLUGIN.answers_to("auth-provider-gcp.sh"));
    }

    #[test]
    fn go_spellings_of_flags() {
        for line in [
            &["get-credentials", "--v=3"][..],
            &["--v=3", "get-credentials"],
            &["-v", "3", "get-credentials"],
            &["-v=3", "get-credentials"],
            &["-v3", "get-credentials"],
            &["--v", "3"],
        ] {
            let p = parse(&PLUGIN, &args(line)).unwrap();
            assert_eq!(p.value("v"), Some("3"), "{line:?}");
            assert_eq!(verbosity(&p, &PLUGIN).unwrap(), 1);
        }
        let p = parse(
            &PLUGIN,
            &args(&[
                "get-credentials",
                "-a",
                "dockercfg",
                "--logtostderr",
                "-alsologtostderr=false",
                "--log-file=/x",
            ]),
        )
        .unwrap();
        assert_eq!(p.value("authFlow"), Some("dockercfg"));
        assert!(p.is_set("logtostderr"));
        assert!(!p.is_set("alsologtostderr"));
        assert_eq!(p.value("log_file"), Some("/x"));
        let warned: Vec<_> = p.warned().iter().map(|f| f.long).collect();
        assert_eq!(warned, ["logtostderr", "alsologtostderr", "log_file"]);
        assert_eq!(
            parse(&PLUGIN, &args(&["--authFlow=gcr"]))
                .unwrap()
                .value("authFlow"),
            Some("gcr")
        );
    }

    #[test]
    fn errors_name_the_argument_not_the_value() {
        let err = |a: &[&str]| parse(&PLUGIN, &args(a)).unwrap_err();
        let e = err(&["--token=hunter2"]);
        assert_eq!(e.kind, ErrorKind::Misconfigured);
        assert_eq!(e.message, "unknown flag --token");
        assert_eq!(err(&["-x"]).message, "unknown shorthand flag -x");
        assert_eq!(err(&["--v"]).message, "flag needs an argument: --v");
        assert!(err(&["--secretish=hunter2"])
            .message
            .contains("use the config file"));
        assert!(!err(&["--secretish=hunter2"])
            .to_string()
            .contains("hunter2"));
        assert!(err(&["--logtostderr=maybe"])
            .message
            .contains("invalid boolean"));
        assert!(err(&["get-credential"])
            .message
            .contains("only subcommand is get-credentials"));
        let p = parse(&PLUGIN, &args(&["--v=x"])).unwrap();
        assert!(verbosity(&p, &PLUGIN).is_err());
    }

    #[test]
    fn positional_arguments_are_one_file_or_ignored_as_the_plugin_declares() {
        let one = Plugin {
            positionals: Positionals::OneFile,
            ..PLUGIN
        };
        let p = parse(&one, &args(&["/etc/kubernetes/azure.json", "--v=2"])).unwrap();
        assert_eq!(p.positionals, ["/etc/kubernetes/azure.json"]);
        assert!(parse(&one, &args(&["a", "b"])).is_err());
        let p = parse(&one, &args(&["--", "-weird"])).unwrap();
        assert_eq!(p.positionals, ["-weird"]);
        let ignored = Plugin {
            positionals: Positionals::Ignored,
            ..PLUGIN
        };
        assert_eq!(
            parse(&ignored, &args(&["get-credentials", "x"]))
                .unwrap()
                .positionals
                .len(),
            2
        );
    }
}
