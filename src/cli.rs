//! Command line: flags (each also settable by environment, since the kubelet passes `env`
//! from its `CredentialProviderConfig`; declared once, in [`crate::args::FLAGS`]) and
//! subcommands.
//!
//! A usage error is one line naming the flag or word and the fix ([`usage_error`]): the
//! kubelet folds a plugin's stderr into one line of its own log, where clap's usage block
//! would be unreadable. `--help` and `--version` print clap's own text.
//!
//! Here: the clap types, [`parse`] (upstream names, the kubelet's command lines, clap) and
//! [`run`]. Beside it: `kubelet_argv` (the kubelet's command lines without clap, the hot
//! path), `usage` (a clap error as one line) and `entry_check` (what `validate-config` says
//! of an entry that runs this program).

mod entry_check;
mod kubelet_argv;
mod usage;

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

pub use crate::args::GlobalArgs;
use crate::exit::Failure;
use crate::io::write_stdout;
pub use entry_check::entry_check;
pub use kubelet_argv::parse_kubelet_argv;
pub use usage::usage_error;
use usage::usage_of;

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
