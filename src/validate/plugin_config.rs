//! The plugin config behind the entries that run kubelet-keyring (`--config` in their `args`,
//! `KUBELET_KEYRING_CONFIG`, or `--plugin-config`), checked against those entries, and the
//! RBAC their token audiences need (`--rbac`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::rc::Rc;

use keyring_kubelet_config::traps;

/// The plugin config an entry names: `--config FILE` / `--config=FILE` in its args, else
/// `KUBELET_KEYRING_CONFIG` in its env.
fn named_plugin_config(entry: &traps::Entry<'_>) -> Option<PathBuf> {
    let mut args = entry.args.iter();
    while let Some(a) = args.next() {
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    entry
        .env_values
        .iter()
        .rev()
        .find(|e| e.name == "KUBELET_KEYRING_CONFIG")
        // A path, not a secret: read to load the file, never printed but as that path.
        .map(|e| PathBuf::from(e.value.expose()))
}

/// A plugin config that entries running this program use, and their `matchImages`.
pub(super) struct Used {
    /// How it is named in findings: its path.
    pub(super) label: String,
    pub(super) config: Rc<crate::config::Config>,
    /// Every `matchImages` entry of the entries that use it.
    pub(super) match_images: Vec<String>,
}

impl Used {
    /// The host patterns the config needs the kubelet to send (identity rules, mirror
    /// sources) that none of its entries admits.
    pub(super) fn unadmitted(&self) -> Vec<String> {
        let entry = keyring_api::backend::KubeletEntry {
            match_images: &self.match_images,
            token_attributes: None,
        };
        let mut hosts = self.config.sections.kubelet_hosts(&self.config.order);
        hosts.extend(
            self.config
                .mirrors
                .sources()
                .enumerate()
                .map(|(i, s)| (format!("mirrors.registries[{i}].source"), s.to_string())),
        );
        hosts
            .into_iter()
            .filter(|(_, host)| !entry.admits(host))
            .map(|(setting, host)| {
                format!(
                    "plugin config {}: {setting} {host:?}: no matchImages entry of the providers \
                     that run kubelet-keyring with it admits it, so the kubelet never asks for \
                     its images",
                    self.label
                )
            })
            .collect()
    }
}

/// The plugin config an entry that runs this program uses: `given` (`--plugin-config`),
/// else the file the entry names when it exists here (one already loaded for another entry
/// is reused). A file that does not load is a warning: every pull would exit 2.
pub(super) fn plugin_config_for(
    entry: &traps::Entry<'_>,
    given: Option<&Rc<crate::config::Config>>,
    used: &[Used],
) -> Result<Option<(String, Rc<crate::config::Config>)>, traps::Warning> {
    if let Some(c) = given {
        let label = c
            .path
            .as_ref()
            .map_or("--plugin-config".into(), |p| p.display().to_string());
        return Ok(Some((label, c.clone())));
    }
    let Some(path) = named_plugin_config(entry) else {
        return Ok(None);
    };
    // Checked on the node; elsewhere (a workstation) the file is usually not there.
    if !path.is_absolute() || !path.exists() {
        tracing::debug!("{} is not here: its rules are not checked", path.display());
        return Ok(None);
    }
    let label = path.display().to_string();
    if let Some(u) = used.iter().find(|u| u.label == label) {
        return Ok(Some((label, u.config.clone())));
    }
    match crate::config::Config::load(Some(&path)) {
        Ok(c) => Ok(Some((label, Rc::new(c)))),
        Err(e) => Err(warning(format!(
            "the plugin config is refused, so every pull exits 2: {e}"
        ))),
    }
}

/// What each backend's section finds wrong with `entry` (see
/// [`keyring_api::Configurable::kubelet_findings`]).
pub(super) fn entry_findings(
    label: &str,
    config: &crate::config::Config,
    entry: &traps::Entry<'_>,
) -> Vec<traps::Warning> {
    let attrs = entry
        .token_attributes
        .map(|t| keyring_api::backend::KubeletTokenAttributes {
            audience: &t.service_account_token_audience,
            cache_type: &t.cache_type,
            require_service_account: t.require_service_account,
            required_annotations: &t.required_service_account_annotation_keys,
            optional_annotations: &t.optional_service_account_annotation_keys,
        });
    let kubelet_entry = keyring_api::backend::KubeletEntry {
        match_images: entry.match_images,
        token_attributes: attrs,
    };
    config
        .sections
        .kubelet_findings(&config.order, &kubelet_entry)
        .into_iter()
        .map(|f| traps::Warning {
            severity: if f.warning {
                keyring_kubelet_config::Severity::Warning
            } else {
                keyring_kubelet_config::Severity::Note
            },
            provider: None,
            field: None,
            message: format!("plugin config {label}: {}", f.message),
        })
        .collect()
}

fn warning(message: String) -> traps::Warning {
    traps::Warning {
        severity: keyring_kubelet_config::Severity::Warning,
        provider: None,
        field: None,
        message,
    }
}

/// The name of the ClusterRole and ClusterRoleBinding [`rbac_yaml`] prints.
pub const RBAC_NAME: &str = "kubelet-keyring-token-audiences";

/// The RBAC that lets every node's kubelet request service-account tokens for `audiences`
/// under `ServiceAccountNodeAudienceRestriction` (on by default since Kubernetes 1.32): a
/// ClusterRole with the verb `request-serviceaccounts-token-audience` on each audience (the
/// resource, in the core group), bound to the group `system:nodes`.
pub fn rbac_yaml(audiences: &BTreeSet<String>) -> String {
    if audiences.is_empty() {
        return "# No provider has tokenAttributes: the kubelet requests no service-account \
                token, and no RBAC is needed.\n"
            .into();
    }
    let quoted: Vec<String> = audiences
        .iter()
        .map(|a| serde_json::Value::String(a.clone()).to_string())
        .collect();
    format!(
        "# Lets the kubelet request service-account tokens for the audiences of its credential\n\
         # providers (ServiceAccountNodeAudienceRestriction). kubectl apply -f this file.\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: ClusterRole\n\
         metadata:\n  name: {RBAC_NAME}\n\
         rules:\n\
         \x20 - verbs: [\"request-serviceaccounts-token-audience\"]\n\
         \x20   apiGroups: [\"\"]\n\
         \x20   resources: [{}]\n\
         ---\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: ClusterRoleBinding\n\
         metadata:\n  name: {RBAC_NAME}\n\
         roleRef:\n\
         \x20 apiGroup: rbac.authorization.k8s.io\n\
         \x20 kind: ClusterRole\n\
         \x20 name: {RBAC_NAME}\n\
         subjects:\n\
         \x20 - apiGroup: rbac.authorization.k8s.io\n\
         \x20   kind: Group\n\
         \x20   name: system:nodes\n",
        quoted.join(", ")
    )
}
