//! The `gcp:` section of the plugin config file, validated while it is parsed.
//!
//! ```yaml
//! gcp:
//!   # Registries that are not Google's but front one (pull-through caches, mirrors behind
//!   # containerd's hosts.toml) and must get the Google access token too.
//!   mirrors: ["gcr-mirror.example.com", "reg.example.com:5000", "*.mirror.example.com/gcr"]
//!   # Read docker credentials from the metadata attributes google-dockercfg and
//!   # google-dockercfg-url before minting access tokens (default false).
//!   dockercfg: false
//!   # The node's credentials files read before the metadata server, in this order:
//!   # applicationCredentials (the file GOOGLE_APPLICATION_CREDENTIALS names: a key or an
//!   # external_account file), gcloud
//!   # ($HOME/.config/gcloud/application_default_credentials.json). Default: both under the
//!   # name kubelet-keyring; none under auth-provider-gcp's names (metadata only, as upstream).
//!   credentialFiles: [applicationCredentials, gcloud]
//!   # KEP-4412 (see the crate docs): with a pod's service-account token but no opt-in, pull
//!   # with the node's identity (true, the default) or fail (false).
//!   nodeIdentityFallback: true
//!   # Exchange opted-in pods' service-account tokens at Google STS (GKE workload identity, or
//!   # workload identity federation for clusters elsewhere).
//!   workloadIdentity:
//!     # audience identitynamespace:<projectId>.svc.id.goog:<identityProvider>, as upstream;
//!     # without projectId, the project of the metadata server.
//!     projectId: my-project
//!     identityProvider: https://container.googleapis.com/v1/projects/my-project/locations/us-central1/clusters/c1
//!     # or instead, a workload identity pool provider's full audience:
//!     # audience: //iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/pool/providers/k8s
//!     # annotation: only service accounts annotated iam.gke.io/enable-wi-image-pull: "true"
//!     # (the default, as upstream); all: every request that carries a token.
//!     optIn: annotation
//!     # Impersonate the Google service account an opted-in service account names with
//!     # iam.gke.io/gcp-service-account. Default: true under the name kubelet-keyring; false
//!     # under auth-provider-gcp's names, as upstream never impersonates.
//!     impersonate: true
//!     # For tests and private endpoints: https, or http to a loopback address only.
//!     # stsEndpoint: https://sts.googleapis.com/v1/token
//!     # iamCredentialsEndpoint: https://iamcredentials.googleapis.com
//! ```
//!
//! Mirror entries are checked as [`Mirror`]s while the section is read (a bad entry fails the
//! whole config with an error that quotes it); the workload identity endpoints must be
//! `https://` (or `http://` to a loopback address) without user-info, query or fragment.

use keyring_api::InvalidSetting;
use keyring_net::http::Uri;
use serde::Deserialize;

use crate::host::{Mirror, OtherHosts};

/// Google STS's token endpoint.
pub const STS_ENDPOINT: &str = "https://sts.googleapis.com/v1/token";
/// The IAM Service Account Credentials API.
pub const IAM_CREDENTIALS_ENDPOINT: &str = "https://iamcredentials.googleapis.com";

/// This backend's section of the plugin config file (`gcp:`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Extra registries that get the Google access token, matched against the image with the
    /// kubelet's rules. Google's own hosts need no entry.
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
    /// Consult the metadata attributes `google-dockercfg`, then `google-dockercfg-url`, for
    /// every image before minting an access token (upstream's `--authFlow=dockercfg` and
    /// `dockercfg-url`). See the crate docs for when it answers.
    #[serde(default)]
    pub dockercfg: bool,
    /// KEP-4412: a request with a service-account token whose service account has not opted
    /// in to workload identity pulls uses the node's identity (`true`, the default) or fails.
    #[serde(default = "yes")]
    pub node_identity_fallback: bool,
    /// KEP-4412: how opted-in service-account tokens are exchanged at Google STS.
    #[serde(default)]
    pub workload_identity: Option<WorkloadIdentity>,
    /// Hosts that are neither Google's nor a mirror: `notMine` (the default) or
    /// `accessToken`, the node's access token for any image the kubelet sends, as upstream's
    /// auth-provider-gcp does (the default under that name: there, the kubelet's
    /// `matchImages` is the list of hosts that get it).
    #[serde(default)]
    pub other_hosts: Option<OtherHosts>,
    /// The node's credentials files consulted before the metadata server, in this order;
    /// `None` (not in the file): both, except under an upstream name, where the `upstream`
    /// module makes it none (upstream reads the metadata server only).
    #[serde(default)]
    pub credential_files: Option<Vec<CredentialFile>>,
    /// The answer's `cacheDuration` ceiling and `cacheKeyType`, from upstream's
    /// `KUBE_SIDECAR_CACHE_DURATION` / `KUBE_SIDECAR_CACHE_TYPE` (set by the `upstream`
    /// module, never by the file).
    #[serde(skip)]
    pub answer_override: AnswerOverride,
    /// Set by the `upstream` module when the binary runs under one of auth-provider-gcp's
    /// names, never by the file: answers take upstream's shape, and the flow is
    /// `--authFlow`'s exactly.
    #[serde(skip)]
    pub upstream: Option<AuthFlow>,
}

/// A credentials file of the node, read before the metadata server when listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialFile {
    /// The file `GOOGLE_APPLICATION_CREDENTIALS` names: a service-account key or an
    /// `external_account` file.
    ApplicationCredentials,
    /// gcloud's application default credentials under `$HOME`.
    Gcloud,
}

/// Both files, Google's application-default order: the default under the own name.
pub const ALL_CREDENTIAL_FILES: &[CredentialFile] = &[
    CredentialFile::ApplicationCredentials,
    CredentialFile::Gcloud,
];

impl Config {
    /// The credentials files to consult, in order ([`Config::credential_files`]).
    pub fn credential_files(&self) -> &[CredentialFile] {
        self.credential_files
            .as_deref()
            .unwrap_or(ALL_CREDENTIAL_FILES)
    }
}

/// Upstream's `--authFlow`, under its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlow {
    /// `gcr`: the access token (the node's, or a pod's from STS).
    Gcr,
    /// `dockercfg`: the `google-dockercfg` attribute only, never a token.
    Dockercfg,
    /// `dockercfg-url`: the document `google-dockercfg-url` names, never a token.
    DockercfgUrl,
}

/// Overrides of the answer's cache fields (upstream's environment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerOverride {
    /// At most this long (`KUBE_SIDECAR_CACHE_DURATION`); never past the token's own
    /// lifetime.
    pub max_lifetime: Option<std::time::Duration>,
    /// This `cacheKeyType` (`KUBE_SIDECAR_CACHE_TYPE`).
    pub cache_key_type: Option<keyring_api::CacheKeyType>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mirrors: Vec::new(),
            dockercfg: false,
            node_identity_fallback: true,
            workload_identity: None,
            other_hosts: None,
            credential_files: None,
            answer_override: AnswerOverride::default(),
            upstream: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Which service accounts exchange their token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OptIn {
    /// Those annotated `iam.gke.io/enable-wi-image-pull: "true"` (upstream's rule).
    Annotation,
    /// Every request that carries a token.
    All,
}

/// Where the STS audience comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// `identitynamespace:<project>.svc.id.goog:<identity_provider>`; without a project, the
    /// metadata server's.
    IdentityNamespace {
        /// The project whose workload identity pool (`<project>.svc.id.goog`) is meant.
        project_id: Option<String>,
        /// The cluster's identity provider URL.
        identity_provider: String,
    },
    /// A full audience, e.g. a workload identity pool provider's resource name.
    Full(String),
}

/// The validated `gcp.workloadIdentity` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawWorkloadIdentity")]
pub struct WorkloadIdentity {
    /// The STS audience.
    pub audience: Audience,
    /// Which service accounts exchange their token.
    pub opt_in: OptIn,
    /// The STS token endpoint URL.
    pub sts_endpoint: Uri,
    /// The IAM credentials API base URL, without a trailing `/`.
    pub iam_credentials_endpoint: Uri,
    /// Whether a Google service account named by the service account's
    /// `iam.gke.io/gcp-service-account` annotation is impersonated after the exchange; `None`
    /// (not in the file): yes, except under an upstream name, where the `upstream` module
    /// makes it no (upstream never impersonates).
    pub impersonate: Option<bool>,
}

impl WorkloadIdentity {
    /// Whether to impersonate a named Google service account ([`WorkloadIdentity::impersonate`]).
    pub fn impersonates(&self) -> bool {
        self.impersonate.unwrap_or(true)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWorkloadIdentity {
    project_id: Option<String>,
    identity_provider: Option<String>,
    audience: Option<String>,
    opt_in: Option<OptIn>,
    sts_endpoint: Option<String>,
    iam_credentials_endpoint: Option<String>,
    impersonate: Option<bool>,
}

impl TryFrom<RawWorkloadIdentity> for WorkloadIdentity {
    type Error = InvalidSetting;

    fn try_from(raw: RawWorkloadIdentity) -> Result<Self, InvalidSetting> {
        const WHERE: &str = "gcp.workloadIdentity";
        let text = |field: &str, v: &str| -> Result<(), InvalidSetting> {
            if v.is_empty()
                || v.len() > 1024
                || v.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                Err(InvalidSetting::new(
                    format!("{WHERE}.{field}"),
                    "must be non-empty, without white space, at most 1024 characters",
                ))
            } else {
                Ok(())
            }
        };
        let audience = match (raw.audience, raw.identity_provider, raw.project_id) {
            (Some(a), None, None) => {
                text("audience", &a)?;
                Audience::Full(a)
            }
            (None, Some(provider), project) => {
                text("identityProvider", &provider)?;
                if let Some(p) = &project {
                    let ok = (6..=100).contains(&p.len())
                        && p.starts_with(|c: char| c.is_ascii_lowercase())
                        && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b':' || b == b'.');
                    if !ok {
                        return Err(InvalidSetting::new(
                            format!("{WHERE}.projectId"),
                            format!("{p:?} is not a Google Cloud project ID"),
                        ));
                    }
                }
                Audience::IdentityNamespace {
                    project_id: project,
                    identity_provider: provider,
                }
            }
            (Some(_), _, _) => {
                return Err(InvalidSetting::new(WHERE, "audience replaces projectId and identityProvider; set either audience or identityProvider (with projectId)"))
            }
            (None, None, _) => {
                return Err(InvalidSetting::new(WHERE, "set identityProvider (and projectId), or audience"))
            }
        };
        let sts_endpoint = endpoint(
            &format!("{WHERE}.stsEndpoint"),
            raw.sts_endpoint.as_deref().unwrap_or(STS_ENDPOINT),
            true,
        )?;
        let iam_credentials_endpoint = endpoint(
            &format!("{WHERE}.iamCredentialsEndpoint"),
            raw.iam_credentials_endpoint
                .as_deref()
                .unwrap_or(IAM_CREDENTIALS_ENDPOINT)
                .trim_end_matches('/'),
            false,
        )?;
        Ok(WorkloadIdentity {
            audience,
            opt_in: raw.opt_in.unwrap_or(OptIn::Annotation),
            sts_endpoint,
            iam_credentials_endpoint,
            impersonate: raw.impersonate,
        })
    }
}

/// An endpoint the service-account token (or a token made from it) is sent to: `https://`,
/// or `http://` to a loopback address only (tests, a local proxy), never user-info, a query
/// or a fragment. `path_allowed`: a full URL; else a base URL without a path.
fn endpoint(field: &str, url: &str, path_allowed: bool) -> Result<Uri, InvalidSetting> {
    let fail = |why: &str| InvalidSetting::new(field.to_string(), format!("{url:?} {why}"));
    let uri: Uri = url.parse().map_err(|_| fail("is not a URL"))?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback => {}
        Some("http") => return Err(fail(
            "must be https:// (http:// only to a loopback address): it receives the pod's token",
        )),
        _ => return Err(fail("must be an https:// URL")),
    }
    if host.is_empty() || uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(fail("needs a host and no user-info"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(fail("must not have a query or fragment"));
    }
    if !path_allowed && !matches!(uri.path(), "" | "/") {
        return Err(fail("must be scheme://host[:port] without a path"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_refuses_unknown_fields() {
        let c: Config = serde_json::from_str(
            r#"{"mirrors": ["reg.example.com:5000", "*.m.example.com/gcr"], "dockercfg": true}"#,
        )
        .unwrap();
        assert_eq!(c.mirrors.len(), 2);
        assert_eq!(c.mirrors[1].path(), "/gcr");
        assert!(c.dockercfg);
        assert_eq!(
            serde_json::from_str::<Config>("{}").unwrap(),
            Config::default()
        );

        let e = serde_json::from_str::<Config>(r#"{"mirrors": ["ok.example.com", "*"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mirror \"*\": too broad"), "{e}");
        let e = serde_json::from_str::<Config>(r#"{"mirror": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `mirror`"), "{e}");
    }

    #[test]
    fn credential_files_default_to_both_and_can_be_none_or_one() {
        let files = |json: &str| {
            serde_json::from_str::<Config>(json)
                .unwrap()
                .credential_files()
                .to_vec()
        };
        assert_eq!(files("{}"), ALL_CREDENTIAL_FILES);
        assert_eq!(files(r#"{"credentialFiles": []}"#), []);
        assert_eq!(
            files(r#"{"credentialFiles": ["gcloud"]}"#),
            [CredentialFile::Gcloud]
        );
        let e = serde_json::from_str::<Config>(r#"{"credentialFiles": ["keyFile"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `keyFile`"), "{e}");
    }

    #[test]
    fn the_workload_identity_section_needs_an_audience_and_safe_endpoints() {
        let c: Config = serde_json::from_str(
            r#"{"nodeIdentityFallback": false, "workloadIdentity": {"projectId": "my-project", "identityProvider": "https://container.googleapis.com/v1/projects/my-project/locations/l/clusters/c"}}"#,
        )
        .unwrap();
        assert!(!c.node_identity_fallback);
        let wi = c.workload_identity.unwrap();
        assert_eq!(wi.opt_in, OptIn::Annotation);
        assert_eq!(wi.sts_endpoint, STS_ENDPOINT);
        assert_eq!(
            wi.iam_credentials_endpoint.to_string(),
            "https://iamcredentials.googleapis.com/"
        );
        assert!(
            matches!(wi.audience, Audience::IdentityNamespace { project_id: Some(ref p), .. } if p == "my-project")
        );
        let c: Config = serde_json::from_str(
            r#"{"workloadIdentity": {"audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k", "optIn": "all", "stsEndpoint": "http://127.0.0.1:8080/v1/token", "iamCredentialsEndpoint": "http://[::1]:9/"}}"#,
        )
        .unwrap();
        assert!(c.node_identity_fallback);
        let wi = c.workload_identity.unwrap();
        assert_eq!(wi.opt_in, OptIn::All);
        assert!(matches!(wi.audience, Audience::Full(_)));
        assert!(wi.impersonates());
        let c: Config = serde_json::from_str(
            r#"{"workloadIdentity": {"audience": "a", "impersonate": false}}"#,
        )
        .unwrap();
        assert!(!c.workload_identity.unwrap().impersonates());

        for (json, want) in [
            (r#"{}"#, "set identityProvider (and projectId), or audience"),
            (r#"{"projectId": "my-project"}"#, "set identityProvider"),
            (
                r#"{"audience": "a", "identityProvider": "b"}"#,
                "audience replaces",
            ),
            (
                r#"{"identityProvider": "b", "projectId": "My_Project"}"#,
                "projectId: \"My_Project\" is not",
            ),
            (r#"{"audience": "a b"}"#, "audience: must be non-empty"),
            (
                r#"{"audience": "a", "stsEndpoint": "http://sts.example.com/v1/token"}"#,
                "stsEndpoint: \"http://sts.example.com/v1/token\" must be https://",
            ),
            (
                r#"{"audience": "a", "stsEndpoint": "ftp://x/y"}"#,
                "must be an https:// URL",
            ),
            (
                r#"{"audience": "a", "stsEndpoint": "https://u@x/y"}"#,
                "no user-info",
            ),
            (
                r#"{"audience": "a", "stsEndpoint": "https://x/y?k=v"}"#,
                "query",
            ),
            (
                r#"{"audience": "a", "iamCredentialsEndpoint": "https://x/v1"}"#,
                "without a path",
            ),
            (r#"{"audience": "a", "optIn": "never"}"#, "unknown variant"),
            (r#"{"audience": "a", "bogus": 1}"#, "unknown field `bogus`"),
        ] {
            let e = serde_json::from_str::<Config>(&format!(r#"{{"workloadIdentity": {json}}}"#))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn example_config_file_parses() {
        #[derive(Deserialize)]
        struct File {
            gcp: Config,
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/gcp.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let file: File = serde_norway::from_str(&text).unwrap();
        let mirrors: Vec<&str> = file.gcp.mirrors.iter().map(Mirror::as_str).collect();
        assert_eq!(
            mirrors,
            [
                "gcr-mirror.example.com",
                "reg.example.com:5000",
                "*.mirror.example.com/gcr"
            ]
        );
        assert!(!file.gcp.dockercfg);
        assert!(file.gcp.node_identity_fallback);
        let wi = file
            .gcp
            .workload_identity
            .expect("a workloadIdentity section");
        assert_eq!(wi.opt_in, OptIn::Annotation);
        assert!(matches!(
            wi.audience,
            Audience::IdentityNamespace { project_id: Some(ref p), ref identity_provider }
                if p == "my-project" && identity_provider.starts_with("https://container.googleapis.com/")
        ));
    }
}
