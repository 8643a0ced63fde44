//! Command line: flags (each also settable by environment, since the kubelet passes `env`
//! from its `CredentialProviderConfig`) and subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::Failure;

/// Version line: the crate version and the backends compiled in.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (backends: docker-config)");

/// A kubelet image credential provider for every registry.
///
/// With no subcommand, reads a CredentialProviderRequest (credentialprovider.kubelet.k8s.io
/// v1, v1beta1 or v1alpha1) on stdin and writes the CredentialProviderResponse on stdout,
/// as the kubelet expects of a plugin named in --image-credential-provider-config.
#[derive(Debug, Parser)]
#[command(name = "kubelet-keyring", version = VERSION, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
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

    /// Do not read or write the credential cache.
    #[arg(long, env = "KUBELET_KEYRING_NO_CACHE", global = true)]
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
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command.unwrap_or(Command::GetCredentials) {
        Command::GetCredentials => crate::get::run(&cli.global),
    }
}
