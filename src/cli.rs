//! Command line: flags (each also settable by environment, since the kubelet passes `env`
//! from its `CredentialProviderConfig`; declared once, in [`crate::args::FLAGS`]) and
//! subcommands.
//!
//! A usage error is one line naming the flag or word and the fix ([`usage_error`]): the
//! kubelet folds a plugin's stderr into one line of its own log, where clap's usage block
//! would be unreadable. `--help` and `--version` print clap's own text.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};
use keyring_kubelet_config::go_quote;

pub use crate::args::GlobalArgs;
use crate::args::{Kind, Value, FLAGS};
use crate::exit::Failure;
use crate::io::write_stdout;

/// Version line: the crate version and the backends compiled in.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let backends: Vec<&str> = crate::backends::all().iter().map(|b| b.name).collect();
    format!(
        "{} (backends: {})",
        env!("CARGO_PKG_VERSION"),
        backends.join(", ")
    )
});

/// A kubelet image credential provider for every registry.
///
/// With no subcommand, reads a CredentialProviderRequest (credentialprovider.kubelet.k8s.io
/// v1, v1beta1 or v1alpha1) on stdin and writes the CredentialProviderResponse on stdout,
/// as the kubelet expects of a plugin named in --image-credential-provider-config.
#[derive(Debug, Parser)]
#[command(name = "kubelet-keyring", version = VERSION.as_str(), propagate_version = true)]
pub struct Cli {
    /// Flags of every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do; `get-credentials` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer one CredentialProviderRequest from stdin (the default; the kubelet's usual `args`).
    GetCredentials,
    /// Explain, for each image, which backend would answer and why, where the credential
    /// would come from and what the cache holds. Secrets are never shown.
    Explain {
        /// Image references (as in a pod spec, or as the kubelet sends them).
        #[arg(required = true)]
        images: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also do the real exchange and report whether it worked (credentials redacted).
        #[arg(long)]
        fetch: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `kubelet-keyring man > kubelet-keyring.1`.
    Man,
    /// Inspect or clear the credential cache (never shows a secret).
    Cache {
        /// What to do with it.
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Check a kubelet CredentialProviderConfig (file or directory) as the kubelet would.
    ValidateConfig(crate::validate::ValidateArgs),
    /// Fold the metrics journal into kubelet-keyring.prom in --metrics-dir (node_exporter's
    /// textfile collector format), with the seconds left on each cached credential. Run by
    /// a systemd timer; never shows a secret.
    Metrics,
}

/// `cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Print the cache directory.
    Path,
    /// List entries: key, scope, backend, state, age, freshness, credential expiry, source.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove every entry.
    Clear,
}

/// The command line of this process: an upstream plugin's when run under its name
/// ([`crate::upstream`]); else [`parse_kubelet_argv`] for the kubelet's own invocations, the
/// upstream flags split off when mixed in, and clap for everything else (and for every error
/// message of this program's own flags). `Err` is a bad upstream command line (exit 2).
pub fn parse() -> Result<Cli, Failure> {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    let argv: Vec<OsString> = argv.collect();
    let env = |name: &str| std::env::var_os(name);
    if let Some(plugin) = crate::upstream::persona(&argv0) {
        let name = std::path::Path::new(&argv0)
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.strip_suffix(".exe").unwrap_or(n))
            .unwrap_or(plugin.names[0]);
        return parse_as_upstream(plugin, name, &argv);
    }
    if let Some(cli) = parse_kubelet_argv(&argv, env) {
        return Ok(cli);
    }
    let text: Option<Vec<String>> = argv.iter().map(|a| a.to_str().map(String::from)).collect();
    if let Some((own, theirs)) = text
        .as_deref()
        .and_then(|a| crate::upstream::split(a, crate::args::takes_value))
    {
        let parsed = crate::upstream::parse_own_name(&theirs)
            .map_err(|e| Failure::BadInput(e.to_string()))?;
        let own: Vec<OsString> = own.into_iter().map(OsString::from).collect();
        let mut cli = match parse_kubelet_argv(&own, env) {
            Some(cli) => cli,
            None => parse_with_clap(own)?,
        };
        cli.global.upstream = crate::upstream::Upstream {
            persona: None,
            parsed,
            args: theirs,
        };
        raise_verbosity(&mut cli)?;
        return Ok(cli);
    }
    parse_with_clap(argv)
}

/// clap's parse of `argv` (without the program name). `--help` and `--version` print and
/// exit 0 here; any other error is one line ([`usage_error`]), exit 2.
fn parse_with_clap(argv: Vec<OsString>) -> Result<Cli, Failure> {
    let full = std::iter::once(OsString::from("kubelet-keyring")).chain(argv);
    Cli::try_parse_from(full).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // clap prints these on stdout; only a closed stdout makes this fail.
            let code = if e.print().is_ok() { 0 } else { 1 };
            std::process::exit(code)
        }
        _ => Failure::BadInput(format!("{}; see {} --help", usage_error(&e), usage_of(&e))),
    })
}

/// The command a clap error is about (`kubelet-keyring explain`), from its usage line.
fn usage_of(e: &clap::Error) -> String {
    let usage = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        // Help shown for a missing subcommand carries its usage only in the text.
        _ => e.render().to_string(),
    };
    let words: Vec<&str> = usage
        .split_whitespace()
        .skip_while(|w| *w != "Usage:")
        .skip(1)
        .take_while(|w| !w.starts_with(['-', '[', '<']))
        .collect();
    if words.is_empty() {
        "kubelet-keyring".into()
    } else {
        words.join(" ")
    }
}

/// What a clap error says is wrong, in a few words naming the flag or word (never a value
/// that was given, which could be a secret pasted in the wrong place), with clap's
/// suggestion if it has one. The caller adds the fix.
pub fn usage_error(e: &clap::Error) -> String {
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let all = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    // `--flag <VALUE>` or `--flag=...` as given: the flag's name alone.
    let flag = || {
        let arg = text(ContextKind::InvalidArg).unwrap_or_default();
        let name = arg.split(['=', ' ']).next().unwrap_or_default().to_string();
        let env = name
            .strip_prefix("--")
            .and_then(|n| FLAGS.iter().find(|f| f.long == n))
            .and_then(|f| f.env)
            .map(|v| format!(" (or {v})"))
            .unwrap_or_default();
        (name, env)
    };
    let hint = |kind| {
        text(kind)
            .map(|s| format!(" (did you mean {}?)", go_quote(&s)))
            .unwrap_or_default()
    };
    let what = match e.kind() {
        ErrorKind::InvalidSubcommand => format!(
            "unknown subcommand {}{}",
            go_quote(&text(ContextKind::InvalidSubcommand).unwrap_or_default()),
            hint(ContextKind::SuggestedSubcommand)
        ),
        ErrorKind::UnknownArgument => {
            let (name, _) = flag();
            let what = if name.starts_with('-') {
                "unknown flag"
            } else {
                "unexpected argument"
            };
            format!(
                "{what} {}{}",
                go_quote(&name),
                hint(ContextKind::SuggestedArg)
            )
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let (name, env) = flag();
            let valid = all(ContextKind::ValidValue);
            if text(ContextKind::InvalidValue).is_some_and(|v| v.is_empty()) {
                format!("{}{env} needs a value", go_quote(&name))
            } else if valid.is_empty() {
                format!("invalid value for {}{env}", go_quote(&name))
            } else {
                format!(
                    "invalid value for {}{env} (one of: {valid})",
                    go_quote(&name)
                )
            }
        }
        ErrorKind::ArgumentConflict => {
            let (name, _) = flag();
            match text(ContextKind::PriorArg) {
                Some(prior) if prior.split(['=', ' ']).next() != Some(name.as_str()) => {
                    format!(
                        "{} cannot be used with {}",
                        go_quote(&name),
                        go_quote(&prior)
                    )
                }
                _ => format!("{} is given more than once", go_quote(&name)),
            }
        }
        ErrorKind::TooManyValues | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            let (name, env) = flag();
            match e.kind() {
                ErrorKind::TooManyValues => format!("{}{env} takes no value here", go_quote(&name)),
                _ => format!("wrong number of values for {}{env}", go_quote(&name)),
            }
        }
        ErrorKind::MissingRequiredArgument => {
            format!("missing {}", all(ContextKind::InvalidArg).to_lowercase())
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let command = usage_of(e);
            let name = command.rsplit(' ').next().unwrap_or_default();
            // The subcommands, from the help text shown in place of the error.
            let text = e.render().to_string();
            let subs: Vec<&str> = text
                .lines()
                .skip_while(|l| !l.starts_with("Commands:"))
                .skip(1)
                .take_while(|l| l.starts_with(' '))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|w| *w != "help")
                .collect();
            match subs.is_empty() {
                true => format!("{} needs a subcommand", go_quote(name)),
                false => format!(
                    "{} needs a subcommand (one of: {})",
                    go_quote(name),
                    subs.join(", ")
                ),
            }
        }
        kind => kind.as_str().unwrap_or("invalid arguments").to_string(),
    };
    what
}

/// The whole command line as `plugin`'s; this program's own settings come from their
/// environment variables only.
fn parse_as_upstream(
    plugin: &'static keyring_api::upstream::Plugin,
    name: &str,
    argv: &[OsString],
) -> Result<Cli, Failure> {
    let args = argv
        .iter()
        .map(|a| a.to_str().map(String::from))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| Failure::BadInput("an argument is not valid UTF-8".into()))?;
    let parsed = keyring_api::upstream::parse(plugin, &args)
        .map_err(|e| Failure::BadInput(format!("{name}: {}", e.message)))?;
    if parsed.is_set("help") {
        write_stdout(crate::upstream::usage(plugin, name).as_bytes())?;
        std::process::exit(0);
    }
    if parsed.is_set("version") {
        write_stdout(format!("{name} (kubelet-keyring {})\n", VERSION.as_str()).as_bytes())?;
        std::process::exit(0);
    }
    let none: [OsString; 0] = [];
    let mut cli = match parse_kubelet_argv(&none, |name| std::env::var_os(name)) {
        Some(cli) => cli,
        None => parse_with_clap(Vec::new())?,
    };
    cli.command = Some(Command::GetCredentials);
    cli.global.upstream = crate::upstream::Upstream {
        persona: Some(plugin),
        parsed,
        args,
    };
    raise_verbosity(&mut cli)?;
    Ok(cli)
}

/// `--v=N` raises this program's verbosity to its equivalent.
fn raise_verbosity(cli: &mut Cli) -> Result<(), Failure> {
    let v = cli
        .global
        .upstream
        .verbosity()
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    cli.global.verbose = cli.global.verbose.max(v);
    Ok(())
}

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

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command.unwrap_or(Command::GetCredentials) {
        Command::GetCredentials => crate::get::run(&cli.global),
        Command::Cache { action } => cache_command(&cli.global, action),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "kubelet-keyring",
                &mut out,
            );
            write_stdout(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .map_err(|e| Failure::Internal(format!("cannot render the man page: {e}")))?;
            write_stdout(&out)
        }
        Command::Explain {
            images,
            json,
            fetch,
        } => crate::explain::run(&cli.global, &images, json, fetch),
        Command::ValidateConfig(args) => crate::validate::run(&args, &entry_check),
        Command::Metrics => crate::metrics::command(&cli.global),
    }
}

/// What this program does with a `CredentialProviderConfig` entry that runs it: the check
/// `validate-config` hands to the config checker (`keyring_kubelet_config::traps::EntryCheck`),
/// which cannot know this CLI or the upstream plugins' tables itself. Under an upstream
/// plugin's name: that plugin's swap report; under its own: whether the CLI takes the `args`.
pub fn entry_check(
    entry: &keyring_kubelet_config::traps::Entry<'_>,
) -> Vec<keyring_kubelet_config::traps::Warning> {
    if let Some(plugin) = crate::upstream::persona(std::ffi::OsStr::new(entry.name)) {
        return crate::upstream::swap_report(plugin, entry);
    }
    if !entry.runs_self {
        return Vec::new();
    }
    args_trap(entry.args)
        .map(|message| keyring_kubelet_config::traps::Warning {
            severity: keyring_kubelet_config::Severity::Warning,
            provider: None,
            field: Some("args".into()),
            message,
        })
        .into_iter()
        .collect()
}

/// What is wrong with `args` for this program, if anything. Parses them as `parse` does:
/// upstream flags split off and read against the upstream tables, the rest with the real CLI.
fn args_trap(args: &[String]) -> Option<String> {
    let own = match crate::upstream::split(args, crate::args::takes_value) {
        Some((own, theirs)) => match crate::upstream::parse_own_name(&theirs) {
            Ok(_) => own,
            Err(e) => {
                return Some(format!(
                    "kubelet-keyring refuses these args ({}): it exits 2 on every pull",
                    e.message
                ))
            }
        },
        None => args.to_vec(),
    };
    let argv = std::iter::once(keyring_kubelet_config::traps::SELF_NAME.to_string()).chain(own);
    let fix = "use args: [get-credentials]";
    match Cli::command().try_get_matches_from(argv) {
        Ok(m) => match m.subcommand_name() {
            None | Some("get-credentials") => None,
            Some(other) => Some(format!(
                "args run \"kubelet-keyring {other}\", which does not answer the kubelet's \
                 request; {fix}"
            )),
        },
        Err(e) => Some(match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => format!(
                "args make kubelet-keyring print help or its version instead of answering; {fix}"
            ),
            ErrorKind::InvalidSubcommand => format!(
                "args name an {}: kubelet-keyring exits 2 on every pull; {fix}",
                usage_error(&e)
            ),
            ErrorKind::UnknownArgument => format!(
                "args hold an {}: kubelet-keyring exits 2 on every pull; {fix}",
                usage_error(&e)
            ),
            _ => format!(
                "kubelet-keyring refuses these args ({}): it exits 2 on every pull; {fix}",
                usage_error(&e)
            ),
        }),
    }
}

fn cache_command(args: &GlobalArgs, action: CacheAction) -> Result<(), Failure> {
    use crate::cache::{cmd, default_dir, DiskCache};
    let dir = args.cache_dir.clone().unwrap_or_else(default_dir);
    if let CacheAction::Path = action {
        return write_stdout(format!("{}\n", dir.display()).as_bytes());
    }
    // Listing and clearing span every context, so the context hash does not matter here.
    let cache = DiskCache::open(dir, [0; 32]).map_err(|e| Failure::BadInput(e.to_string()))?;
    match action {
        CacheAction::Path => Ok(()),
        CacheAction::List { json } => {
            let rows = cmd::rows(&cache, keyring_api::Clock::invocation().now());
            let text = if json {
                let mut t = serde_json::to_string_pretty(&rows)
                    .map_err(|e| Failure::Internal(e.to_string()))?;
                t.push('\n');
                t
            } else {
                cmd::table(&rows)
            };
            write_stdout(text.as_bytes())
        }
        CacheAction::Clear => {
            let n = cache.clear().map_err(|e| {
                Failure::Internal(format!("cannot clear {}: {e}", cache.dir().display()))
            })?;
            write_stdout(format!("removed {n} files from {}\n", cache.dir().display()).as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(p: &keyring_kubelet_config::decode::Provider) -> Vec<(Option<String>, String)> {
        let options = keyring_kubelet_config::traps::Options {
            bin_dir: None,
            entry_check: Some(&entry_check),
        };
        keyring_kubelet_config::traps::check(&[p], &options)
            .into_iter()
            .filter(|w| w.severity == keyring_kubelet_config::Severity::Warning)
            .map(|w| (w.field, w.message))
            .collect()
    }

    fn entry(name: &str, images: &[&str]) -> keyring_kubelet_config::decode::Provider {
        keyring_kubelet_config::decode::Provider {
            name: name.into(),
            match_images: images.iter().map(|s| s.to_string()).collect(),
            default_cache_duration: Some(300_000_000_000),
            api_version: "credentialprovider.kubelet.k8s.io/v1".into(),
            args: vec!["get-credentials".into()],
            ..Default::default()
        }
    }

    #[test]
    fn args_are_parsed_with_this_programs_cli() {
        let args = |a: &[&str]| {
            let mut p = entry("kubelet-keyring", &["a.io"]);
            p.args = a.iter().map(|s| s.to_string()).collect();
            warnings(&p)
        };
        for ok in [
            &[][..],
            &["get-credentials"],
            &["get-credentials", "-v"],
            &["--config=/etc/k.yaml", "get-credentials"],
            &["get-credentials", "--no-cache"],
            // Upstream flags are taken under the own name too.
            &["get-credentials", "--v=3", "--logtostderr"],
        ] {
            assert!(args(ok).is_empty(), "{ok:?}: {:?}", args(ok));
        }
        let w = args(&["get-credential"]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0.as_deref(), Some("args"));
        assert_eq!(
            w[0].1,
            "args name an unknown subcommand \"get-credential\" (did you mean \"get-credentials\"?): kubelet-keyring exits 2 on every pull; use args: [get-credentials]"
        );
        let w = args(&["get-credentials", "--token=hunter2"]);
        assert!(
            w[0].1.starts_with("args hold an unknown flag \"--token\""),
            "{}",
            w[0].1
        );
        assert!(!w[0].1.contains("hunter2"));
        assert!(args(&["cache", "list"])[0]
            .1
            .starts_with("args run \"kubelet-keyring cache\""));
        assert!(args(&["--help"])[0].1.contains("print help"));
        // An upstream name of a backend this build has: that plugin's command line (upstream
        // ignores positionals).
        #[cfg(feature = "ecr")]
        {
            let mut p = entry("ecr-credential-provider", &["a.io"]);
            p.args = vec!["whatever".into()];
            assert!(warnings(&p).is_empty());
            p.args = vec!["--bogus".into()];
            assert!(
                warnings(&p)[0].1.contains("unknown flag --bogus"),
                "{:?}",
                warnings(&p)
            );
        }
        // Another plugin's args are its own business.
        let mut p = entry("harbor-credential-provider", &["a.io"]);
        p.args = vec!["--username=jwt".into()];
        assert!(warnings(&p).is_empty());
    }
}
