//! The flags every subcommand takes ([`GlobalArgs`]), each declared once, in [`FLAGS`]: its
//! name, its environment variable, how it takes a value, its help, and what it changes for
//! the cache context. Everything that must know the global flags reads that table:
//!
//! * clap's command ([`GlobalArgs`]'s `clap::Args`, built from it, and
//!   `clap::FromArgMatches`, read through it);
//! * the fast path for the kubelet's own command lines (`cli::parse_kubelet_argv`), and
//!   `tests/cli_fast_path.rs`, which proves it agrees with clap over flags and variables
//!   taken from the table;
//! * the upstream split (`upstream::split`), which must not look into the values of this
//!   program's valued flags ([`takes_value`]);
//! * the cache context (`cache::context_hash`), which leaves out the variables of flags that
//!   change no answer ([`in_cache_context`]).
//!
//! A new global flag is one line of [`FLAGS`] and one field of [`GlobalArgs`].
//!
//! A leaf: the subcommands (`get`, `explain`, the chain) take these flags without importing
//! the command line that parses them, so `cli` sits on top and nothing points back up to it.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

/// `--root-dir` when neither the flag nor its variable is given: the kubelet's default.
pub const DEFAULT_ROOT_DIR: &str = "/var/lib/kubelet";

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag VALUE` or `--flag=VALUE`, a path, at most once; its variable holds the same.
    Path {
        /// The value's name in the help (`DIR`, `FILE`).
        value_name: &'static str,
        /// The value when neither the flag nor its variable is given.
        default: Option<&'static str>,
    },
    /// `--flag`, at most once; its variable is one of clap's boolish words (`1`, `true`,
    /// `yes`, `on`, `0`, `false`, `no`, `off`, ...).
    Switch,
    /// `-v`, `-vv`, `--verbose`, counted; no variable.
    Count {
        /// The short form.
        short: char,
    },
}

/// What a flag changes for the cache context (`cache::context_hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheContext {
    /// It changes answers: what it names is hashed (the docker-config search directories,
    /// the config file's bytes), and its variable's text too.
    Keyed,
    /// It changes where the cache or the metrics are, whether the cache is used, or what is
    /// logged, never an answer: its variable is left out, so a hit finds the entries of runs
    /// without it.
    Ignored,
}

/// A value of a flag, as the parsers hand it to [`Flag::set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A [`Kind::Path`]'s, `None` when not given and without default.
    Path(Option<PathBuf>),
    /// A [`Kind::Switch`]'s.
    Switch(bool),
    /// A [`Kind::Count`]'s.
    Count(u8),
}

/// One global flag.
#[derive(Debug)]
pub struct Flag {
    /// The long name, without `--`.
    pub long: &'static str,
    /// The environment variable that sets it when the flag is absent.
    pub env: Option<&'static str>,
    /// How it takes a value.
    pub kind: Kind,
    /// What it changes for the cache context.
    pub context: CacheContext,
    /// The help line.
    pub help: &'static str,
    /// Where its value goes in [`GlobalArgs`].
    set: fn(&mut GlobalArgs, Value),
}

/// Every global flag.
pub static FLAGS: [Flag; 6] = [
    Flag {
        long: "root-dir",
        env: Some("KUBELET_KEYRING_ROOT_DIR"),
        kind: Kind::Path {
            value_name: "DIR",
            default: Some(DEFAULT_ROOT_DIR),
        },
        context: CacheContext::Keyed,
        help: "The kubelet's --root-dir: the preferred directory for config.json and .dockercfg",
        set: |a, v| a.root_dir = v.path().unwrap_or_default(),
    },
    Flag {
        long: "config",
        env: Some("KUBELET_KEYRING_CONFIG"),
        kind: Kind::Path {
            value_name: "FILE",
            default: None,
        },
        context: CacheContext::Keyed,
        help: "The plugin's own config file (YAML or JSON): backend order, mirrors, endpoints",
        set: |a, v| a.config = v.path(),
    },
    Flag {
        long: "cache-dir",
        env: Some("KUBELET_KEYRING_CACHE_DIR"),
        kind: Kind::Path {
            value_name: "DIR",
            default: None,
        },
        context: CacheContext::Ignored,
        help: "The credential cache directory [default: /var/lib/kubelet-keyring/cache for \
               root, $XDG_CACHE_HOME/kubelet-keyring otherwise]",
        set: |a, v| a.cache_dir = v.path(),
    },
    Flag {
        long: "no-cache",
        env: Some("KUBELET_KEYRING_NO_CACHE"),
        kind: Kind::Switch,
        context: CacheContext::Ignored,
        help: "Do not read or write the credential cache (env: 1/true/yes/on)",
        set: |a, v| a.no_cache = v == Value::Switch(true),
    },
    Flag {
        long: "metrics-dir",
        env: Some("KUBELET_KEYRING_METRICS_DIR"),
        kind: Kind::Path {
            value_name: "DIR",
            default: None,
        },
        context: CacheContext::Ignored,
        help: "Record Prometheus metrics in DIR (node_exporter's textfile collector \
               directory): a journal appended by each answer, folded into \
               kubelet-keyring.prom by the `metrics` command and by fetches. Off when unset",
        set: |a, v| a.metrics_dir = v.path(),
    },
    Flag {
        long: "verbose",
        env: None,
        kind: Kind::Count { short: 'v' },
        context: CacheContext::Ignored,
        help: "More logging on stderr: -v info, -vv debug, -vvv trace. Secrets are never logged",
        set: |a, v| {
            if let Value::Count(n) = v {
                a.verbose = n;
            }
        },
    },
];

/// Variables of this program that are no flag and change no answer either.
const OUTSIDE_CONTEXT: &[&str] = &[
    // The deadline shortened for tests: a hit under it must find the entries made without.
    keyring_api::deadline::TEST_LIMIT_ENV,
];

impl Value {
    fn path(self) -> Option<PathBuf> {
        match self {
            Value::Path(p) => p,
            _ => None,
        }
    }
}

impl Flag {
    /// Puts `value` in its place in `args`.
    pub fn set(&self, args: &mut GlobalArgs, value: Value) {
        (self.set)(args, value)
    }

    /// The flag as clap's argument (its id is the long name).
    fn arg(&self) -> Arg {
        let mut arg = Arg::new(self.long)
            .long(self.long)
            .global(true)
            .help(self.help);
        if let Some(env) = self.env {
            arg = arg.env(env);
        }
        match self.kind {
            Kind::Path {
                value_name,
                default,
            } => {
                arg = arg
                    .value_name(value_name)
                    .action(ArgAction::Set)
                    .value_parser(clap::value_parser!(PathBuf));
                if let Some(d) = default {
                    arg = arg.default_value(d);
                }
                arg
            }
            Kind::Switch => arg
                .action(ArgAction::SetTrue)
                .value_parser(clap::builder::BoolishValueParser::new()),
            Kind::Count { short } => arg.short(short).action(ArgAction::Count),
        }
    }

    /// Its value in clap's matches.
    fn value_in(&self, m: &ArgMatches) -> Value {
        match self.kind {
            Kind::Path { .. } => Value::Path(m.get_one::<PathBuf>(self.long).cloned()),
            Kind::Switch => Value::Switch(m.get_flag(self.long)),
            Kind::Count { .. } => Value::Count(m.get_count(self.long)),
        }
    }
}

/// Whether `arg` is one of this program's valued flags given apart from its value
/// (`--config`, then the file): the next argument is its value, whatever it looks like.
pub fn takes_value(arg: &str) -> bool {
    arg.strip_prefix("--").is_some_and(|name| {
        FLAGS
            .iter()
            .any(|f| f.long == name && matches!(f.kind, Kind::Path { .. }))
    })
}

/// Whether this program's variable `var` (`KUBELET_KEYRING_*`) belongs in the cache context:
/// all but those of [`CacheContext::Ignored`] flags and the few others that change no
/// answer.
pub fn in_cache_context(var: &str) -> bool {
    !OUTSIDE_CONTEXT.contains(&var)
        && !FLAGS
            .iter()
            .any(|f| f.env == Some(var) && f.context == CacheContext::Ignored)
}

/// Flags every subcommand takes; see [`FLAGS`].
#[derive(Debug, Clone, Default)]
pub struct GlobalArgs {
    /// `--root-dir`.
    pub root_dir: PathBuf,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--metrics-dir`.
    pub metrics_dir: Option<PathBuf>,
    /// `-v`, counted.
    pub verbose: u8,
    /// The upstream plugins' arguments, and the upstream name run under ([`crate::upstream`]).
    pub upstream: crate::upstream::Upstream,
}

impl clap::Args for GlobalArgs {
    fn augment_args(cmd: Command) -> Command {
        FLAGS.iter().fold(cmd, |cmd, f| cmd.arg(f.arg()))
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for GlobalArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = GlobalArgs::default();
        for f in &FLAGS {
            f.set(&mut args, f.value_in(m));
        }
        Ok(args)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        let upstream = std::mem::take(&mut self.upstream);
        *self = Self::from_arg_matches(m)?;
        self.upstream = upstream;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_its_own_name_and_variable_and_a_help_line() {
        for (i, f) in FLAGS.iter().enumerate() {
            assert!(!f.help.is_empty() && !f.help.ends_with('.'), "{}", f.long);
            for g in &FLAGS[i + 1..] {
                assert_ne!(f.long, g.long);
                assert!(f.env.is_none() || f.env != g.env, "{}", f.long);
            }
            if let Some(env) = f.env {
                assert_eq!(
                    env,
                    format!(
                        "KUBELET_KEYRING_{}",
                        f.long.replace('-', "_").to_uppercase()
                    )
                );
            }
        }
    }

    #[test]
    fn only_the_variables_of_flags_that_change_answers_are_in_the_cache_context() {
        assert!(in_cache_context("KUBELET_KEYRING_ROOT_DIR"));
        assert!(in_cache_context("KUBELET_KEYRING_CONFIG"));
        assert!(in_cache_context("KUBELET_KEYRING_HELPER_TIMEOUT"));
        for ignored in [
            "KUBELET_KEYRING_CACHE_DIR",
            "KUBELET_KEYRING_NO_CACHE",
            "KUBELET_KEYRING_METRICS_DIR",
            keyring_api::deadline::TEST_LIMIT_ENV,
        ] {
            assert!(!in_cache_context(ignored), "{ignored}");
        }
    }

    #[test]
    fn only_path_flags_given_apart_take_the_next_argument() {
        assert!(takes_value("--config"));
        assert!(takes_value("--metrics-dir"));
        assert!(!takes_value("--config=/x"));
        assert!(!takes_value("--no-cache"));
        assert!(!takes_value("-v"));
        assert!(!takes_value("config"));
    }
}
