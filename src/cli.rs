//! Command line: flags (each also settable by environment, since the kubelet passes `env`
//! from its `CredentialProviderConfig`) and subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::Failure;

/// Version line: the crate version and the backends compiled in.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let backends: Vec<&str> = crate::config::ProviderName::ALL
        .into_iter()
        .filter(|p| p.compiled_in())
        .map(|p| p.as_str())
        .collect();
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

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The kubelet's --root-dir: the preferred directory for config.json and .dockercfg.
    #[arg(
        long,
        env = "KUBELET_KEYRING_ROOT_DIR",
        default_value = "/var/lib/kubelet",
        value_name = "DIR",
        global = true
    )]
    pub root_dir: PathBuf,

    /// The plugin's own config file (YAML or JSON): provider order, mirrors, endpoints.
    #[arg(
        long,
        env = "KUBELET_KEYRING_CONFIG",
        value_name = "FILE",
        global = true
    )]
    pub config: Option<PathBuf>,

    /// The credential cache directory [default: /var/lib/kubelet-keyring/cache for root,
    /// $XDG_CACHE_HOME/kubelet-keyring otherwise].
    #[arg(
        long,
        env = "KUBELET_KEYRING_CACHE_DIR",
        value_name = "DIR",
        global = true
    )]
    pub cache_dir: Option<PathBuf>,

    /// Do not read or write the credential cache (env: 1/true/yes/on).
    #[arg(
        long,
        env = "KUBELET_KEYRING_NO_CACHE",
        global = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_cache: bool,

    /// More logging on stderr: -v info, -vv debug, -vvv trace. Secrets are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer one CredentialProviderRequest from stdin (the default; the kubelet's usual `args`).
    GetCredentials,
    /// Explain, for each image, which provider would answer and why, where the credential
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
            crate::get::write_stdout(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .map_err(|e| Failure::Internal(format!("cannot render the man page: {e}")))?;
            crate::get::write_stdout(&out)
        }
        Command::Explain {
            images,
            json,
            fetch,
        } => crate::explain::run(&cli.global, &images, json, fetch),
        Command::ValidateConfig(args) => crate::validate::run(&args),
    }
}

fn cache_command(args: &GlobalArgs, action: CacheAction) -> Result<(), Failure> {
    use crate::cache::{cmd, default_dir, DiskCache};
    let dir = args.cache_dir.clone().unwrap_or_else(default_dir);
    if let CacheAction::Path = action {
        return crate::get::write_stdout(format!("{}\n", dir.display()).as_bytes());
    }
    // Listing and clearing span every context, so the context hash does not matter here.
    let cache = DiskCache::open(dir, [0; 32]).map_err(|e| Failure::BadInput(e.to_string()))?;
    match action {
        CacheAction::Path => Ok(()),
        CacheAction::List { json } => {
            let rows = cmd::rows(&cache, std::time::SystemTime::now());
            let text = if json {
                let mut t = serde_json::to_string_pretty(&rows)
                    .map_err(|e| Failure::Internal(e.to_string()))?;
                t.push('\n');
                t
            } else {
                cmd::table(&rows)
            };
            crate::get::write_stdout(text.as_bytes())
        }
        CacheAction::Clear => {
            let n = cache.clear().map_err(|e| {
                Failure::Internal(format!("cannot clear {}: {e}", cache.dir().display()))
            })?;
            crate::get::write_stdout(
                format!("removed {n} files from {}\n", cache.dir().display()).as_bytes(),
            )
        }
    }
}
