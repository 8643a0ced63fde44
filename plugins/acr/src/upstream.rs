//! `acr-credential-provider` (kubernetes-sigs/cloud-provider-azure
//! `cmd/acr-credential-provider`): its command line and environment, and what this backend
//! does with them. (Being filled in: until then only the logging flags are known and every
//! other flag is refused as unknown.)

use keyring_api::upstream::{Parsed, Plugin, Positionals};
use keyring_api::ProviderError;

use crate::config::Config;

/// `acr-credential-provider`.
pub static PLUGIN: Plugin = Plugin {
    backend: crate::NAME,
    names: &["acr-credential-provider"],
    flags: &[],
    klog: true,
    env: &[],
    positionals: Positionals::OneFile,
    differences: &[],
};

/// Applies an upstream command line and environment to the `acr:` section; `as_upstream`:
/// run under the upstream name, whose defaults then apply where the plugin config file did
/// not set the field.
pub fn configure(
    config: &mut Config,
    parsed: &Parsed,
    _as_upstream: bool,
    _env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ProviderError> {
    if let Some(path) = parsed.positionals.first() {
        config.cloud_config.get_or_insert_with(|| path.into());
    }
    Ok(())
}
