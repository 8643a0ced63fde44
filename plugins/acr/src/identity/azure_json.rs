//! The node's `azure.json` (the cloud-provider config nodes already carry, JSON or YAML):
//! the fields this backend reads, and the node identity they name.
//!
//! The file is read on each request that needs it ([`read`]), so a rotated secret or a
//! changed identity is picked up without restarting anything. [`select`] is step 2 of the
//! [selection](super): managed identity, workload identity, or a service principal with a
//! secret or a certificate.
//!
//! Upstream's credential provider reads `cloud`, `tenantId`, `aadClientId`,
//! `aadClientSecret`, `useManagedIdentityExtension`, `userAssignedIdentityID`,
//! `resourceManagerEndpoint` and `cloudConfigType` for its identity. Read here beyond those:
//! `aadClientCertPath` and `useFederatedWorkloadIdentityExtension` with
//! `aadFederatedTokenFile`, which authenticate the same application `aadClientId` where
//! upstream hands the runtime `aadClientId` with an empty secret. `cloudConfigType` has no
//! effect, as upstream (without a Kubernetes client the file is all there is), but must be a
//! string. A `resourceManagerEndpoint` naming a cloud other than a built-in one is refused
//! unless the authority is given otherwise ([`check_resource_manager`]): upstream discovers
//! that cloud's endpoints from ARM metadata, which this build does not fetch, because that
//! unauthenticated document would choose where the service principal's secret goes next.

use std::path::Path;

use keyring_api::{InvalidSetting, Secret};
use serde::Deserialize;

use super::{
    check_client_id, check_tenant, is_tenant_id, read_bounded, Credential, Env, Identity, MsiId,
    MAX_CONFIG_BYTES,
};
use crate::error::Error;

/// The fields of `azure.json` this backend reads; everything else in it is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureJson {
    /// Cloud name.
    #[serde(default)]
    pub cloud: String,
    /// Tenant.
    #[serde(default)]
    pub tenant_id: String,
    /// Service principal (application) client ID; `msi` on AKS when MI is used.
    #[serde(default, rename = "aadClientId")]
    pub aad_client_id: String,
    /// Service principal secret; `msi` on AKS when MI is used.
    #[serde(default, rename = "aadClientSecret")]
    pub aad_client_secret: Secret<String>,
    /// Service principal certificate (PEM with the key).
    #[serde(default, rename = "aadClientCertPath")]
    pub aad_client_cert_path: String,
    /// Password of the certificate (PKCS#12 only, which this build refuses).
    #[serde(default, rename = "aadClientCertPassword")]
    pub aad_client_cert_password: Secret<String>,
    /// Use the VM's managed identity.
    #[serde(default)]
    pub use_managed_identity_extension: bool,
    /// The user-assigned identity: a client ID, or an ARM resource ID (`/subscriptions/...`).
    #[serde(default, rename = "userAssignedIdentityID")]
    pub user_assigned_identity_id: String,
    /// Use workload identity with [`AzureJson::aad_federated_token_file`].
    #[serde(default)]
    pub use_federated_workload_identity_extension: bool,
    /// The projected service-account token file for workload identity.
    #[serde(default)]
    pub aad_federated_token_file: String,
    /// The ARM endpoint of a cloud whose other endpoints come from its metadata (Azure Stack
    /// Hub, custom clouds).
    #[serde(default)]
    pub resource_manager_endpoint: String,
    /// Where the cloud-provider config comes from (`file`, `secret`, `merge`); no effect in a
    /// credential provider, as upstream, but a value that is not a string fails the file.
    #[serde(default)]
    pub cloud_config_type: Option<String>,
}

/// The ARM endpoints of the built-in clouds: a `resourceManagerEndpoint` on one of these
/// hosts names that cloud, whose endpoints are known without asking ARM.
const BUILT_IN_ARM_HOSTS: [&str; 4] = [
    "management.azure.com",
    "management.chinacloudapi.cn",
    "management.usgovcloudapi.net",
    "management.microsoftazure.de",
];

/// Refuses a `resourceManagerEndpoint` that names a cloud whose endpoints upstream would
/// discover from ARM metadata, unless the plugin config or the `AZURE_ENVIRONMENT_FILEPATH`
/// file gave the authority (`settings.authority_host`).
pub fn check_resource_manager(
    a: &AzureJson,
    path: &Path,
    settings: &crate::config::Settings,
) -> Result<(), Error> {
    let rme = a.resource_manager_endpoint.trim();
    if rme.is_empty() || settings.authority_host.is_some() {
        return Ok(());
    }
    let built_in = crate::config::split_url(rme).is_some_and(|(scheme, authority, _)| {
        scheme == "https"
            && BUILT_IN_ARM_HOSTS.iter().any(|h| {
                authority.eq_ignore_ascii_case(h)
                    || authority.eq_ignore_ascii_case(&format!("{h}:443"))
            })
    });
    if built_in {
        return Ok(());
    }
    Err(Error::Content {
        what: "azure.json",
        path: path.to_path_buf(),
        problem: format!(
            "resourceManagerEndpoint {} names a cloud whose endpoints upstream discovers from ARM metadata (Azure Stack Hub, custom clouds), which this build does not fetch: set AZURE_ENVIRONMENT_FILEPATH to the cloud's environment file (cloud AzureStackCloud), or acr.endpoints.authorityHost and acr.registrySuffixes in the plugin config",
            keyring_net::shown_url(rme)
        ),
    })
}

impl AzureJson {
    /// Parses the file's bytes: JSON, or YAML as the upstream plugin's config loader also
    /// takes (a file whose first character is not `{`). Errors (setting `azure.json`) name
    /// the line and column, never a value.
    pub fn parse(bytes: &[u8]) -> Result<AzureJson, InvalidSetting> {
        let fail = |problem: String| InvalidSetting::new("azure.json", problem);
        // Strip a UTF-8 BOM, which Windows tooling writes.
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let json = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|b| *b == b'{');
        if !json {
            // libyaml crawls on deep nesting before serde sees anything: bounded first, as
            // every YAML file named by others is.
            keyring_api::nesting::check_nesting(bytes).map_err(|e| fail(e.to_string()))?;
            return serde_norway::from_slice(bytes).map_err(|e| {
                fail(match e.location() {
                    Some(l) => format!(
                        "not valid YAML (nor JSON) at line {} column {}",
                        l.line(),
                        l.column()
                    ),
                    None => "not valid YAML (nor JSON)".to_string(),
                })
            });
        }
        serde_json::from_slice(bytes).map_err(|e| {
            fail(format!(
                "not valid JSON at line {} column {} ({:?})",
                e.line(),
                e.column(),
                e.classify()
            ))
        })
    }
}

/// Reads and parses the file at `path` (`acr.cloudConfig`), again for every request.
pub fn read(path: &Path) -> Result<AzureJson, Error> {
    let bytes = read_bounded(
        path,
        MAX_CONFIG_BYTES,
        "azure.json",
        "check acr.cloudConfig",
    )?;
    AzureJson::parse(bytes.expose()).map_err(|e| Error::Content {
        what: "azure.json",
        path: path.to_path_buf(),
        problem: e.problem,
    })
}

/// The node identity `a` (read from `path`) names: step 2 of the selection. `env` reads
/// `AZURE_FEDERATED_TOKEN_FILE`, the workload identity's file when the cloud config names
/// none (nothing under the upstream name).
pub fn select(
    a: &AzureJson,
    path: &Path,
    env: Env<'_>,
    authority: &dyn Fn() -> Result<String, Error>,
) -> Result<Identity, Error> {
    let origin = format!("azure.json {}", path.display());
    let content = |problem: String| Error::Content {
        what: "azure.json",
        path: path.to_path_buf(),
        problem,
    };
    if a.use_managed_identity_extension {
        let id = a.user_assigned_identity_id.trim();
        let id = if id.is_empty() {
            None
        } else if id.to_ascii_lowercase().contains("/subscriptions/") {
            Some(MsiId::ResourceId(id.to_string()))
        } else {
            Some(MsiId::ClientId(check_client_id(
                id,
                "userAssignedIdentityID",
            )?))
        };
        return Ok(Identity {
            credential: Credential::ManagedIdentity(id),
            client_id: String::new(),
            tenant: Some(a.tenant_id.clone()).filter(|t| is_tenant_id(t)),
            authority: None,
            origin,
            cloud_config_tenant: None,
        });
    }
    let tenant = match a.tenant_id.as_str() {
        "" => {
            return Err(content(
                "has no tenantId, which a service principal or workload identity needs".into(),
            ))
        }
        t => check_tenant(t, "tenantId")?,
    };
    let client_id = match a.aad_client_id.as_str() {
        "" => {
            return Err(content(
                "has no aadClientId; set it, or useManagedIdentityExtension: true".into(),
            ))
        }
        c => check_client_id(c, "aadClientId")?,
    };
    let credential = if a.use_federated_workload_identity_extension {
        let file = Some(a.aad_federated_token_file.clone())
            .filter(|f| !f.is_empty())
            .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE"))
            .ok_or_else(|| {
                content("sets useFederatedWorkloadIdentityExtension but no aadFederatedTokenFile (nor is AZURE_FEDERATED_TOKEN_FILE set)".into())
            })?;
        Credential::FederatedTokenFile(file.into())
    } else if !a.aad_client_secret.expose().is_empty() {
        Credential::ClientSecret(a.aad_client_secret.clone())
    } else if !a.aad_client_cert_path.is_empty() {
        Credential::Certificate(a.aad_client_cert_path.clone().into())
    } else {
        return Err(content(
            "names no credential: set useManagedIdentityExtension (and userAssignedIdentityID for a user-assigned identity), aadClientSecret or aadClientCertPath, or useFederatedWorkloadIdentityExtension".into(),
        ));
    };
    Ok(Identity {
        credential,
        client_id,
        tenant: Some(tenant),
        authority: Some(authority()?),
        origin,
        cloud_config_tenant: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_json_is_json_or_yaml_and_its_errors_quote_no_value() {
        let j = AzureJson::parse(
            br#"{"cloud":"AzurePublicCloud","tenantId":"t","aadClientId":"msi","aadClientSecret":"msi",
                 "useManagedIdentityExtension":true,"userAssignedIdentityID":"abc",
                 "subscriptionId":"ignored","location":"eastus"}"#,
        )
        .unwrap();
        assert!(j.use_managed_identity_extension);
        assert_eq!(j.user_assigned_identity_id, "abc");
        assert_eq!(j.aad_client_secret.expose(), "msi");
        assert_eq!(
            format!("{j:?}").matches("msi").count(),
            1,
            "only the client id shows"
        );
        let e = AzureJson::parse(b"{\"aadClientSecret\": \"hunter2\",}").unwrap_err();
        assert_eq!(e.setting, "azure.json");
        let e = e.to_string();
        assert!(e.contains("line 1") && !e.contains("hunter2"), "{e}");
        let e = AzureJson::parse(b"{\"aadClientSecret\": 987654}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && !e.contains("987654"), "{e}");
        assert!(AzureJson::parse(b"\xef\xbb\xbf{}").is_ok());
        // YAML, as the upstream plugin's loader also takes it.
        let y = AzureJson::parse(
            b"cloud: AzurePublicCloud\ntenantId: t\nuseManagedIdentityExtension: true\nuserAssignedIdentityID: abc\n",
        )
        .unwrap();
        assert!(y.use_managed_identity_extension);
        assert_eq!(y.user_assigned_identity_id, "abc");
        let e =
            AzureJson::parse(b"aadClientSecret: hunter2\nuseManagedIdentityExtension: hunter3\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("YAML") && !e.contains("hunter"), "{e}");
        // Nesting is bounded before libyaml scans it (1 MB of `- ` took 160 MB to refuse).
        let deep = format!("{}x\n", "- ".repeat(500_000));
        let e = AzureJson::parse(deep.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("nested deeper than 64"), "{e}");
    }
}
