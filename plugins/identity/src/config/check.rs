//! The checks of the `identity:` section that serde cannot make (see the parent module's
//! docs); no I/O.

use keyring_api::InvalidSetting;

use super::{Config, IdentityChoice, Method, NodeSource, Rule, VaultAuth};

impl Config {
    /// Checks every rule (see the module docs). No I/O.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate(&format!("identity.rules[{i}]"))?;
        }
        Ok(())
    }
}

impl Rule {
    /// Whether the rule may use the pod's token.
    pub fn may_use_pod(&self) -> bool {
        self.identity != IdentityChoice::Node
    }

    /// Whether the rule may use the node's identity.
    pub fn may_use_node(&self) -> bool {
        self.identity != IdentityChoice::Pod
    }

    fn validate(&self, at: &str) -> Result<(), InvalidSetting> {
        let bad =
            |field: &str, problem: String| InvalidSetting::new(format!("{at}.{field}"), problem);
        if self.hosts.is_empty() {
            return Err(bad("hosts", "at least one host pattern is required".into()));
        }
        for (j, h) in self.hosts.iter().enumerate() {
            if h.trim().is_empty() || h.contains("://") {
                return Err(bad(
                    &format!("hosts[{j}]"),
                    format!("{h:?} is not a host pattern (write it as in matchImages, without a scheme)"),
                ));
            }
            keyring_api::pattern::validate_match_image(h)
                .map_err(|e| bad(&format!("hosts[{j}]"), e.to_string()))?;
        }
        match (&self.pod, self.may_use_pod()) {
            (None, true) => {
                return Err(bad(
                    "pod",
                    "identity pod or podWhenAnnotated needs pod.audience (the kubelet's serviceAccountTokenAudience)".into(),
                ))
            }
            (Some(p), true) if p.audience.trim().is_empty() => {
                return Err(bad("pod.audience", "must not be empty".into()))
            }
            (Some(_), false) => {
                return Err(bad("pod", "identity node never uses the pod's token; remove pod or change identity".into()))
            }
            _ => {}
        }
        let annotation = self.pod.as_ref().and_then(|p| p.annotation.as_deref());
        match (self.identity, annotation) {
            (IdentityChoice::PodWhenAnnotated, None | Some("")) => return Err(bad(
                "pod.annotation",
                "identity podWhenAnnotated needs the annotation that selects the pod's identity"
                    .into(),
            )),
            (IdentityChoice::Pod, Some(_)) => {
                return Err(bad(
                    "pod.annotation",
                    "only identity podWhenAnnotated reads an annotation".into(),
                ))
            }
            _ => {}
        }
        match (&self.node, self.may_use_node()) {
            (None, true) => {
                return Err(bad("node", "identity node or podWhenAnnotated needs a node source: tokenFile, aws, gcp or azure".into()))
            }
            (Some(_), false) => {
                return Err(bad("node", "identity pod never uses the node's identity; remove node or change identity".into()))
            }
            _ => {}
        }
        if let Some(node) = &self.node {
            validate_node(node, &format!("{at}.node"))?;
        }
        let aws_node = matches!(self.node, Some(NodeSource::Aws(_)));
        match &self.method {
            Method::ArtifactoryAws(_) if self.identity != IdentityChoice::Node || !aws_node => {
                return Err(bad(
                    "method.artifactoryAws",
                    "needs identity node with node.aws (it sends a signed AWS request, not a token)".into(),
                ))
            }
            Method::ArtifactoryAws(_) => {}
            Method::Vault(v)
                if v.auth == VaultAuth::Aws
                    && (self.identity != IdentityChoice::Node || !aws_node) =>
            {
                return Err(bad(
                    "method.vault.auth",
                    "aws needs identity node with node.aws (it sends a signed AWS request, not a token)".into(),
                ))
            }
            Method::Vault(v) if v.auth == VaultAuth::Aws => {}
            Method::Vault(v) if v.iam_server_id.is_some() => {
                return Err(bad(
                    "method.vault.iamServerId",
                    "only the aws auth method signs a server ID".into(),
                ))
            }
            Method::KubernetesSecret(_) if self.identity != IdentityChoice::Pod => {
                return Err(bad(
                    "method.kubernetesSecret",
                    "needs identity pod: the Secret is read in the pod's namespace with the pod's own token".into(),
                ))
            }
            _ if aws_node => {
                return Err(bad(
                    "node.aws",
                    format!("an AWS identity is a signed request, not a token: method {} cannot use it (artifactoryAws and vault with auth aws can)", self.method.name()),
                ))
            }
            _ => {}
        }
        let method_at = format!("method.{}", self.method.name());
        for (field, url) in self.method.endpoints() {
            check_url(url).map_err(|p| bad(&format!("{method_at}.{field}"), p))?;
        }
        validate_method(&self.method).map_err(|(field, p)| bad(&format!("{method_at}.{field}"), p))
    }
}

fn validate_node(node: &NodeSource, at: &str) -> Result<(), InvalidSetting> {
    let bad = |field: &str, problem: String| InvalidSetting::new(format!("{at}.{field}"), problem);
    match node {
        NodeSource::TokenFile(p) if p.as_os_str().is_empty() => {
            Err(bad("tokenFile", "must name a file".into()))
        }
        NodeSource::TokenFile(_) => Ok(()),
        NodeSource::Aws(a) => {
            if let Some(e) = &a.sts_endpoint {
                check_url(e).map_err(|p| bad("aws.stsEndpoint", p))?;
            }
            match &a.region {
                Some(r)
                    if r.is_empty()
                        || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
                {
                    Err(bad("aws.region", format!("{r:?} is not an AWS region")))
                }
                _ => Ok(()),
            }
        }
        NodeSource::Gcp(g) if g.audience.trim().is_empty() => {
            Err(bad("gcp.audience", "must not be empty".into()))
        }
        NodeSource::Gcp(_) => Ok(()),
        NodeSource::Azure(a) if a.resource.trim().is_empty() => {
            Err(bad("azure.resource", "must not be empty".into()))
        }
        NodeSource::Azure(a) => match &a.imds {
            Some(u) if !u.starts_with("http://") => Err(bad(
                "azure.imds",
                format!("{u:?} is not an http:// URL (IMDS is link-local plain HTTP)"),
            )),
            _ => Ok(()),
        },
    }
}

fn validate_method(method: &Method) -> Result<(), (&'static str, String)> {
    let required = |field: &'static str, v: &str| {
        if v.trim().is_empty() {
            Err((field, "must not be empty".to_string()))
        } else {
            Ok(())
        }
    };
    match method {
        Method::PassThrough(p) => required("username", &p.username),
        Method::TokenExchange(t) => {
            required("username", &t.username)?;
            if t.client_secret_file.is_some() && t.client_id.is_none() {
                return Err(("clientSecretFile", "needs clientId".into()));
            }
            Ok(())
        }
        Method::Quay(q) => {
            required("robot", &q.robot)?;
            if !q.robot.contains('+') {
                return Err((
                    "robot",
                    format!("{:?} is not a robot account name (org+name)", q.robot),
                ));
            }
            Ok(())
        }
        Method::ArtifactoryOidc(a) => required("providerName", &a.provider_name),
        Method::ArtifactoryAws(_) => Ok(()),
        Method::Cloudsmith(c) => {
            required("org", &c.org)?;
            required("service", &c.service)?;
            required("username", &c.username)
        }
        Method::Vault(v) => {
            required("role", &v.role)?;
            required("path", &v.path)?;
            required("kvMount", &v.kv_mount)?;
            required("usernameField", &v.username_field)?;
            required("passwordField", &v.password_field)
        }
        Method::KubernetesSecret(k) => {
            required("secret", &k.secret)?;
            // A DNS-1123 subdomain: the name goes into the API path.
            if !k
                .secret
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            {
                return Err(("secret", format!("{:?} is not a Secret name", k.secret)));
            }
            Ok(())
        }
    }
}

/// An endpoint a token may go to: `https://host[:port][/path]`, or `http://` to a loopback
/// address (which the backend still refuses outside tests). No user-info, query or fragment.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not an https:// URL"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.contains(['?', '#']) {
        return Err(format!(
            "{} must be https://host[:port][/path], without user-info, query or fragment",
            keyring_net::shown_url(url)
        ));
    }
    match scheme {
        "https" => Ok(()),
        "http" if crate::http::is_loopback(authority) => Ok(()),
        _ => Err(format!(
            "{} is not https://: tokens and credentials go only over TLS",
            keyring_net::shown_url(url)
        )),
    }
}
