//! The kubelet's own command lines, parsed without building clap's command (the hot path).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::{Cli, Command, GlobalArgs};
use crate::args::{Kind, Value, FLAGS};

/// Parses the command lines the kubelet runs us with (its `args`: nothing or
/// `get-credentials`, with the global flags and their environment variables) without
/// building clap's command: on a cache hit, clap's build and parse were ~170,000 of the
/// process's ~440,000 instructions and ~30 of its ~105 page faults (its code, its heap).
///
/// `None` for anything else, and for whatever it is not sure clap would accept exactly so
/// (a repeated flag, an empty value, a value starting with `-`, an unknown word): clap then
/// parses it, errors and help included. Where this returns `Some`, clap returns the same
/// `Cli`; `tests/cli_fast_path.rs` checks that over thousands of generated command lines.
pub fn parse_kubelet_argv(
    argv: &[OsString],
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<Cli> {
    /// What the command line gave for one flag of [`FLAGS`].
    #[derive(Default)]
    struct Given {
        value: Option<PathBuf>,
        on: bool,
        /// Counts before and after `get-credentials`: clap counts each side on its own.
        counts: [usize; 2],
    }
    let mut given: Vec<Given> = FLAGS.iter().map(|_| Given::default()).collect();
    let mut command = None;
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_str()?;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(OsStr::new(v))),
            _ => (arg, None),
        };
        if name == "get-credentials" && command.is_none() && inline.is_none() {
            command = Some(Command::GetCredentials);
            continue;
        }
        let side = usize::from(command.is_some());
        // `-vvv`: one short counted flag, repeated.
        if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.starts_with('-')) {
            let first = shorts.chars().next()?;
            let i = FLAGS
                .iter()
                .position(|f| f.kind == Kind::Count { short: first })?;
            if !shorts.chars().all(|c| c == first) {
                return None;
            }
            given[i].counts[side] += shorts.len();
            continue;
        }
        let long = name.strip_prefix("--")?;
        let i = FLAGS.iter().position(|f| f.long == long)?;
        let g = &mut given[i];
        match FLAGS[i].kind {
            Kind::Count { .. } if inline.is_none() => g.counts[side] += 1,
            Kind::Switch if inline.is_none() && !g.on => g.on = true,
            Kind::Path { .. } if g.value.is_none() => {
                let value = match inline {
                    Some(v) => v,
                    None => args.next()?.as_os_str(),
                };
                if value.is_empty() || value.as_encoded_bytes().starts_with(b"-") {
                    return None;
                }
                g.value = Some(PathBuf::from(value));
            }
            _ => return None,
        }
    }
    let mut global = GlobalArgs::default();
    for (f, g) in FLAGS.iter().zip(given) {
        // Absent flags come from the environment, as with clap's `env`. clap reads (and
        // checks) each variable again for the subcommand even when the flag was given, so
        // an empty or non-boolean value is left to clap whatever the flags.
        let from_env = f.env.and_then(&env);
        let value = match f.kind {
            Kind::Path { default, .. } => {
                if from_env.as_ref().is_some_and(|v| v.is_empty()) {
                    return None;
                }
                let value = g.value.or(from_env.map(PathBuf::from));
                Value::Path(value.or(default.map(PathBuf::from)))
            }
            Kind::Switch => {
                let from_env = match from_env {
                    None => false,
                    // clap's BoolishValueParser, whose words these are; anything else is
                    // its error.
                    Some(v) => match v.to_str()?.to_ascii_lowercase().as_str() {
                        "y" | "yes" | "t" | "true" | "on" | "1" => true,
                        "n" | "no" | "f" | "false" | "off" | "0" => false,
                        _ => return None,
                    },
                };
                Value::Switch(g.on || from_env)
            }
            Kind::Count { .. } => match g.counts {
                [n, 0] | [0, n] => Value::Count(u8::try_from(n).ok()?),
                _ => return None,
            },
        };
        f.set(&mut global, value);
    }
    Some(Cli { global, command })
}
