//! The `identity:` section of the plugin config, as serde reads it, and its checks (no I/O).
//!
//! ```yaml
//! identity:
//!   rules:                              # first match wins
//!     - hosts: [harbor.example.com]     # kubelet match patterns (label globs, ports, paths)
//!       identity: podWhenAnnotated      # pod | node | podWhenAnnotated
//!       pod:
//!         audience: harbor.example.com  # the kubelet's tokenAttributes.serviceAccountTokenAudience
//!         annotation: example.com/registry-identity   # podWhenAnnotated only
//!       node:
//!         tokenFile: /var/run/secrets/registry/token  # or aws: {}, gcp: {audience}, azure: {resource}
//!       method:
//!         passThrough: {username: jwt}
//! ```
//!
//! A rule names the hosts it serves, whom it authenticates as ([`IdentityChoice`], with the
//! [`PodConfig`] and [`NodeSource`] that choice needs) and how that identity becomes a
//! registry credential ([`Method`]). [`Config::validate`] checks everything serde cannot:
//! every host is a valid match pattern, the identity the rule may use is configured, the
//! method can use that identity (the AWS proof only goes to Artifactory's AWS endpoint; a
//! namespace Secret is read only with the pod's own token), and every endpoint is `https://`
//! (plain `http://` only to a loopback address, which the backend then still refuses unless
//! the test setting allows it; see [`crate::http`]). Errors name the field as the operator
//! writes it: `identity.rules[1].method.vault.role`.

use std::path::PathBuf;

use serde::Deserialize;

/// The `identity:` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// The rules, in order: the first whose hosts match the image answers.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One rule: hosts, identity, method.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    /// Kubelet match patterns (`registry.example.com`, `*.example.com:5000`, `host/team`).
    pub hosts: Vec<String>,
    /// Whom the rule authenticates as.
    pub identity: IdentityChoice,
    /// The pod's service-account token: needed for `pod` and `podWhenAnnotated`.
    #[serde(default)]
    pub pod: Option<PodConfig>,
    /// The node's own identity: needed for `node` and `podWhenAnnotated`.
    #[serde(default, with = "serde_norway::with::singleton_map")]
    pub node: Option<NodeSource>,
    /// How the identity becomes a registry credential.
    #[serde(with = "serde_norway::with::singleton_map")]
    pub method: Method,
}

/// Whom a rule authenticates as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentityChoice {
    /// Always the pod's service-account token (KEP-4412); without one, an error.
    Pod,
    /// Always the node's identity; a pod's token is not used.
    Node,
    /// The pod's token when its service account carries `pod.annotation` (any value but
    /// `false`), the node's identity otherwise (and for pods without a token).
    PodWhenAnnotated,
}

/// The pod's service-account token, as the kubelet's `tokenAttributes` request it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodConfig {
    /// The audience the token must carry (`tokenAttributes.serviceAccountTokenAudience`); a
    /// token for another audience is refused, never forwarded.
    pub audience: String,
    /// `podWhenAnnotated`: the service-account annotation that asks for the pod's identity
    /// (list it in `tokenAttributes.optionalServiceAccountAnnotationKeys`).
    #[serde(default)]
    pub annotation: Option<String>,
}

/// The node's own identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum NodeSource {
    /// A token in a file (projected or static), read on every exchange.
    TokenFile(PathBuf),
    /// The node's AWS credentials (the SDK's chain: environment, profile, IMDSv2), as a
    /// signed STS `GetCallerIdentity` request.
    Aws(AwsSource),
    /// A GCE metadata identity token for an audience (`GCE_METADATA_HOST` honoured).
    Gcp(GcpSource),
    /// An Azure IMDS managed-identity token for a resource.
    Azure(AzureSource),
}

/// [`NodeSource::Aws`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsSource {
    /// The region the request is signed for; default `us-east-1` (the global endpoint's).
    #[serde(default)]
    pub region: Option<String>,
    /// The STS endpoint the request names; default `https://sts.amazonaws.com`.
    #[serde(default)]
    pub sts_endpoint: Option<String>,
}

/// [`NodeSource::Gcp`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpSource {
    /// The identity token's audience.
    pub audience: String,
}

/// [`NodeSource::Azure`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AzureSource {
    /// The Entra ID resource (application ID URI) the token is for.
    pub resource: String,
    /// A user-assigned identity's client ID; default the VM's only identity.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The IMDS token URL; default `http://169.254.169.254/metadata/identity/oauth2/token`.
    #[serde(default)]
    pub imds: Option<String>,
}

/// How an identity becomes a registry credential: a map of one key, the method's name
/// (YAML's enum tags are not used, so JSON and YAML read alike).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Method {
    /// The identity token itself is the password (Harbor federated robots, zot).
    PassThrough(PassThrough),
    /// OAuth 2.0 token exchange (RFC 8693) at any authorization server.
    TokenExchange(TokenExchange),
    /// Quay robot federation (`GET /oauth2/federation/robot/token`).
    Quay(Quay),
    /// Artifactory OIDC token exchange (`POST /access/api/v1/oidc/token`).
    ArtifactoryOidc(ArtifactoryOidc),
    /// Artifactory AWS IAM (`POST /access/api/v1/aws/token` with a signed GetCallerIdentity).
    ArtifactoryAws(ArtifactoryAws),
    /// Cloudsmith OIDC (`POST /openid/<org>/`).
    Cloudsmith(Cloudsmith),
    /// Vault / OpenBao `jwt` or `kubernetes` login, then a KV v2 read.
    Vault(Vault),
    /// A `kubernetes.io/dockerconfigjson` Secret in the pod's namespace, read with its token.
    KubernetesSecret(KubernetesSecret),
}

/// [`Method::PassThrough`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PassThrough {
    /// The registry user name sent with the token; default `jwt`.
    #[serde(default = "default_jwt_user")]
    pub username: String,
}

fn default_jwt_user() -> String {
    "jwt".into()
}

/// [`Method::TokenExchange`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenExchange {
    /// The token endpoint.
    pub endpoint: String,
    /// `audience` of the request.
    #[serde(default)]
    pub audience: Option<String>,
    /// `resource` of the request.
    #[serde(default)]
    pub resource: Option<String>,
    /// `scope` of the request.
    #[serde(default)]
    pub scope: Option<String>,
    /// `subject_token_type`; default `urn:ietf:params:oauth:token-type:jwt`.
    #[serde(default)]
    pub subject_token_type: Option<String>,
    /// `requested_token_type`, when the server needs one.
    #[serde(default)]
    pub requested_token_type: Option<String>,
    /// Client authentication: none, or this client ID (with `clientSecretFile`, HTTP Basic;
    /// alone, `client_id` in the form).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The client secret, in a file (read at each exchange, never logged).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The registry user name sent with the issued access token.
    pub username: String,
}

/// [`Method::Quay`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Quay {
    /// The Quay server, `https://quay.example.com`.
    pub url: String,
    /// The federated robot account, `org+robot`.
    pub robot: String,
}

/// [`Method::ArtifactoryOidc`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArtifactoryOidc {
    /// The JFrog platform, `https://example.jfrog.io`.
    pub url: String,
    /// The OIDC integration's name (`provider_name`).
    pub provider_name: String,
    /// `project_key`, for a project-scoped integration.
    #[serde(default)]
    pub project_key: Option<String>,
}

/// [`Method::ArtifactoryAws`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArtifactoryAws {
    /// The JFrog platform, `https://example.jfrog.io`.
    pub url: String,
    /// The token lifetime asked for, in seconds (`expires_in`); default the server's.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Cloudsmith's API server, the default of [`Cloudsmith::api_url`].
pub const CLOUDSMITH_API: &str = "https://api.cloudsmith.io";

/// [`Method::Cloudsmith`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cloudsmith {
    /// The API server; default `https://api.cloudsmith.io`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The organisation's slug.
    pub org: String,
    /// The OIDC service account's slug.
    pub service: String,
    /// The registry user name; default `token`.
    #[serde(default = "default_token_user")]
    pub username: String,
}

fn default_token_user() -> String {
    "token".into()
}

/// [`Method::Vault`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Vault {
    /// The Vault or OpenBao server, `https://vault.example.com:8200`.
    pub address: String,
    /// `X-Vault-Namespace`, for Vault Enterprise namespaces.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The auth method: `jwt`, `kubernetes` (a token), or `aws` (the node's signed AWS
    /// request: identity node with `node.aws`).
    pub auth: VaultAuth,
    /// The auth method's mount path; default `jwt`, `kubernetes` or `aws`.
    #[serde(default)]
    pub auth_mount: Option<String>,
    /// `aws` only: the `X-Vault-AWS-IAM-Server-ID` header signed into the request, when the
    /// Vault role's `iam_server_id_header_value` requires one.
    #[serde(default)]
    pub iam_server_id: Option<String>,
    /// The role to log in as.
    pub role: String,
    /// The KV v2 engine's mount path; default `secret`.
    #[serde(default = "default_kv_mount")]
    pub kv_mount: String,
    /// The secret's path under the mount (`registry/harbor`).
    pub path: String,
    /// The field holding the registry user; default `username`.
    #[serde(default = "default_username_field")]
    pub username_field: String,
    /// The field holding the registry password; default `password`.
    #[serde(default = "default_password_field")]
    pub password_field: String,
}

/// [`Vault::auth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VaultAuth {
    /// `auth/<mount>/login` of the JWT/OIDC method.
    Jwt,
    /// `auth/<mount>/login` of the Kubernetes method.
    Kubernetes,
    /// `auth/<mount>/login` of the AWS method, IAM type (a signed `GetCallerIdentity`).
    Aws,
}

impl VaultAuth {
    /// The default mount path.
    pub fn default_mount(self) -> &'static str {
        match self {
            VaultAuth::Jwt => "jwt",
            VaultAuth::Kubernetes => "kubernetes",
            VaultAuth::Aws => "aws",
        }
    }
}

fn default_kv_mount() -> String {
    "secret".into()
}
fn default_username_field() -> String {
    "username".into()
}
fn default_password_field() -> String {
    "password".into()
}

/// [`Method::KubernetesSecret`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesSecret {
    /// The API server, `https://10.0.0.1:6443`.
    pub api_server: String,
    /// The cluster CA (PEM) the API server's certificate is checked against; default the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The Secret's name, in the pod's own namespace.
    pub secret: String,
}

impl Method {
    /// The method's name as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            Method::PassThrough(_) => "passThrough",
            Method::TokenExchange(_) => "tokenExchange",
            Method::Quay(_) => "quay",
            Method::ArtifactoryOidc(_) => "artifactoryOidc",
            Method::ArtifactoryAws(_) => "artifactoryAws",
            Method::Cloudsmith(_) => "cloudsmith",
            Method::Vault(_) => "vault",
            Method::KubernetesSecret(_) => "kubernetesSecret",
        }
    }

    /// Every endpoint a token of this method goes to, with its field name.
    pub fn endpoints(&self) -> Vec<(&'static str, &str)> {
        match self {
            Method::PassThrough(_) => Vec::new(),
            Method::TokenExchange(t) => vec![("endpoint", t.endpoint.as_str())],
            Method::Quay(q) => vec![("url", q.url.as_str())],
            Method::ArtifactoryOidc(a) => vec![("url", a.url.as_str())],
            Method::ArtifactoryAws(a) => vec![("url", a.url.as_str())],
            Method::Cloudsmith(c) => {
                vec![("apiUrl", c.api_url.as_deref().unwrap_or(CLOUDSMITH_API))]
            }
            Method::Vault(v) => vec![("address", v.address.as_str())],
            Method::KubernetesSecret(k) => vec![("apiServer", k.api_server.as_str())],
        }
    }
}

impl NodeSource {
    /// The source's name as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            NodeSource::TokenFile(_) => "tokenFile",
            NodeSource::Aws(_) => "aws",
            NodeSource::Gcp(_) => "gcp",
            NodeSource::Azure(_) => "azure",
        }
    }
}

mod check;
mod kubelet;

pub use check::check_url;

#[cfg(test)]
mod tests;
