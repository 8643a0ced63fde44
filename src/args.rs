//! The flags every subcommand takes ([`GlobalArgs`]) and the environment variables behind
//! them. A leaf: the subcommands (`get`, `explain`, the chain) take these flags without
//! importing the command line that parses them, so `cli` sits on top and nothing points back
//! up to it.

use std::path::PathBuf;

use clap::Args;

/// `--root-dir` when neither the flag nor its variable is given: the kubelet's default.
pub(crate) const DEFAULT_ROOT_DIR: &str = "/var/lib/kubelet";
// The environment variables behind [`GlobalArgs`].
pub(crate) const ENV_ROOT_DIR: &str = "KUBELET_KEYRING_ROOT_DIR";
pub(crate) const ENV_CONFIG: &str = "KUBELET_KEYRING_CONFIG";
pub(crate) const ENV_CACHE_DIR: &str = "KUBELET_KEYRING_CACHE_DIR";
pub(crate) const ENV_NO_CACHE: &str = "KUBELET_KEYRING_NO_CACHE";
pub(crate) const ENV_METRICS_DIR: &str = "KUBELET_KEYRING_METRICS_DIR";

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The kubelet's --root-dir: the preferred directory for config.json and .dockercfg.
    #[arg(
        long,
        env = ENV_ROOT_DIR,
        default_value = DEFAULT_ROOT_DIR,
        value_name = "DIR",
        global = true
    )]
    pub root_dir: PathBuf,

    /// The plugin's own config file (YAML or JSON): backend order, mirrors, endpoints.
    #[arg(
        long,
        env = ENV_CONFIG,
        value_name = "FILE",
        global = true
    )]
    pub config: Option<PathBuf>,

    /// The credential cache directory [default: /var/lib/kubelet-keyring/cache for root,
    /// $XDG_CACHE_HOME/kubelet-keyring otherwise].
    #[arg(
        long,
        env = ENV_CACHE_DIR,
        value_name = "DIR",
        global = true
    )]
    pub cache_dir: Option<PathBuf>,

    /// Do not read or write the credential cache (env: 1/true/yes/on).
    #[arg(
        long,
        env = ENV_NO_CACHE,
        global = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_cache: bool,

    /// Record Prometheus metrics in DIR (node_exporter's textfile collector directory):
    /// a journal appended by each answer, folded into kubelet-keyring.prom by the
    /// `metrics` command and by fetches. Off when unset.
    #[arg(
        long,
        env = ENV_METRICS_DIR,
        value_name = "DIR",
        global = true
    )]
    pub metrics_dir: Option<PathBuf>,

    /// More logging on stderr: -v info, -vv debug, -vvv trace. Secrets are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The upstream plugins' arguments, and the upstream name run under ([`crate::upstream`]).
    #[arg(skip)]
    pub upstream: crate::upstream::Upstream,
}
