//! Every method with every identity source, end to end through the binary (issue 21).
//!
//! One data-driven test walks the whole grid, method × source (the pod's token; the node's
//! `tokenFile`, `gcp` metadata, `azure` IMDS, `aws` signed request). Each pair gets its own
//! sandbox, a fake vendor server holding every method's documented endpoint, and the fake
//! node metadata servers ([`Metadata`]); every token is a real JWT of the test issuer, and the
//! vendor fake accepts only a token it can verify for [`AUD`]. For a pair that works it
//! asserts the credential answered, that the endpoint received exactly the token the source
//! gives (the pod's, the file's, the one GCE metadata or IMDS minted, the node's signed AWS
//! request) and never another, and the `cacheDuration`. A pair refused by design
//! (`artifactoryAws` needs the node's AWS identity, which feeds nothing else but Vault's
//! `aws` login; a namespace Secret is read only with the pod's own token) must be one line, exit 2, naming the field,
//! both when the config is loaded for a request and from `validate-config`, with nothing
//! sent. Failures are collected and reported per pair. README's "Any registry" table is
//! checked against the same grid.
//!
//! The focused tests of each pair (every request field, refusals, TLS, the cache) are in the
//! other modules; this one only proves that every pair is wired.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;

/// The audience every source's token is minted for and every rule asks for.
const AUD: &str = "https://registry.example.com";
/// The node's static AWS credentials (environment).
const AWS_KEY_ID: &str = "AKIAMATRIXTEST";
const AWS_SESSION: &str = "matrix-session-token";
/// Lifetimes, distinct per source and per method so that a `cacheDuration` shows whose
/// expiry it follows.
const POD_TTL: u64 = 3600;
const FILE_TTL: u64 = 7200;
/// [`Metadata`]'s tokens: GCE's `exp`, IMDS's `expires_in`.
const GCP_TTL: u64 = 3600;
const AZURE_TTL: u64 = 3599;
const EXCHANGE_TTL: u64 = 2400;
const QUAY_TTL: u64 = 2700;
const OIDC_TTL: u64 = 1800;
const AWS_TTL: u64 = 900;
const CLOUDSMITH_TTL: u64 = 5400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Pod,
    TokenFile,
    Gcp,
    Azure,
    Aws,
}

const SOURCES: [Source; 5] = [
    Source::Pod,
    Source::TokenFile,
    Source::Gcp,
    Source::Azure,
    Source::Aws,
];

impl Source {
    /// As README's table heads it.
    fn name(self) -> &'static str {
        match self {
            Source::Pod => "pod",
            Source::TokenFile => "tokenFile",
            Source::Gcp => "gcp",
            Source::Azure => "azure",
            Source::Aws => "aws",
        }
    }

    /// The rule's `identity:` and its source, as YAML lines of a rule.
    fn yaml(self, file: &std::path::Path, metadata: &Metadata) -> String {
        match self {
            Source::Pod => format!("identity: pod\n      pod: {{audience: \"{AUD}\"}}"),
            Source::TokenFile => format!(
                "identity: node\n      node: {{tokenFile: \"{}\"}}",
                file.display()
            ),
            Source::Gcp => format!("identity: node\n      node: {{gcp: {{audience: \"{AUD}\"}}}}"),
            Source::Azure => format!(
                "identity: node\n      node: {{azure: {{resource: \"{AUD}\", imds: \"{}\"}}}}",
                metadata.imds()
            ),
            Source::Aws => "identity: node\n      node: {aws: {}}".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    PassThrough,
    TokenExchange,
    Quay,
    ArtifactoryOidc,
    ArtifactoryAws,
    Cloudsmith,
    Vault,
    KubernetesSecret,
}

const METHODS: [Method; 8] = [
    Method::PassThrough,
    Method::TokenExchange,
    Method::Quay,
    Method::ArtifactoryOidc,
    Method::ArtifactoryAws,
    Method::Cloudsmith,
    Method::Vault,
    Method::KubernetesSecret,
];

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::PassThrough => "passThrough",
            Method::TokenExchange => "tokenExchange",
            Method::Quay => "quay",
            Method::ArtifactoryOidc => "artifactoryOidc",
            Method::ArtifactoryAws => "artifactoryAws",
            Method::Cloudsmith => "cloudsmith",
            Method::Vault => "vault",
            Method::KubernetesSecret => "kubernetesSecret",
        }
    }

    /// The rule's `method:` value for `source`, its endpoints at `base`.
    fn yaml(self, base: &str, source: Source) -> String {
        match self {
            Method::PassThrough => "passThrough: {username: jwt}".into(),
            Method::TokenExchange => {
                format!("tokenExchange: {{endpoint: \"{base}/oauth2/token\", username: oauth2}}")
            }
            Method::Quay => format!("quay: {{url: \"{base}\", robot: team+puller}}"),
            Method::ArtifactoryOidc => {
                format!("artifactoryOidc: {{url: \"{base}\", providerName: k8s}}")
            }
            Method::ArtifactoryAws => {
                format!("artifactoryAws: {{url: \"{base}\", expiresIn: {AWS_TTL}}}")
            }
            Method::Cloudsmith => {
                format!("cloudsmith: {{apiUrl: \"{base}\", org: acme, service: k8s-puller}}")
            }
            Method::Vault => format!(
                "vault: {{address: \"{base}\", auth: {}, role: puller, path: registry/matrix}}",
                if source == Source::Aws { "aws" } else { "jwt" }
            ),
            Method::KubernetesSecret => {
                format!("kubernetesSecret: {{apiServer: \"{base}\", secret: registry-pull}}")
            }
        }
    }
}

/// The field the one line of a pair refused by design names, or `None` for a pair that
/// must work.
fn refusal(method: Method, source: Source) -> Option<&'static str> {
    match (method, source) {
        (Method::ArtifactoryAws | Method::Vault, Source::Aws)
        | (Method::KubernetesSecret, Source::Pod) => None,
        (Method::ArtifactoryAws, _) => Some("identity.rules[0].method.artifactoryAws"),
        (Method::KubernetesSecret, _) => Some("identity.rules[0].method.kubernetesSecret"),
        (_, Source::Aws) => Some("identity.rules[0].node.aws"),
        _ => None,
    }
}

/// How long the answer may be reused.
#[derive(Debug, Clone, Copy)]
enum Life {
    /// `0s`: the pod's own token as the password.
    Zero,
    /// Until a credential that expires in this many seconds is refreshed.
    Expires(u64),
    /// A stored secret: five minutes, less jitter.
    Stored,
}

fn life(method: Method, source: Source) -> Life {
    match (method, source) {
        (Method::PassThrough, Source::Pod) => Life::Zero,
        (Method::PassThrough, Source::TokenFile) => Life::Expires(FILE_TTL),
        (Method::PassThrough, Source::Gcp) => Life::Expires(GCP_TTL),
        (Method::PassThrough, Source::Azure) => Life::Expires(AZURE_TTL),
        (Method::PassThrough, Source::Aws) => unreachable!("refused"),
        (Method::TokenExchange, _) => Life::Expires(EXCHANGE_TTL),
        (Method::Quay, _) => Life::Expires(QUAY_TTL),
        (Method::ArtifactoryOidc, _) => Life::Expires(OIDC_TTL),
        (Method::ArtifactoryAws, _) => Life::Expires(AWS_TTL),
        (Method::Cloudsmith, _) => Life::Expires(CLOUDSMITH_TTL),
        (Method::Vault | Method::KubernetesSecret, _) => Life::Stored,
    }
}

/// What the vendor fake issues (the registry tokens of Quay and Cloudsmith are JWTs whose
/// `exp` is their only lifetime).
struct Issued {
    quay: String,
    cloudsmith: String,
}

const EXCHANGED: &str = "matrix-exchanged-access-token";
const OIDC_ACCESS: &str = "matrix-jfrog-oidc-access-token";
const AWS_ACCESS: &str = "matrix-jfrog-aws-access-token";
const VAULT_TOKEN: &str = "hvs.matrix-client-token";

/// The credential a working pair answers, `source_token` being what the source gave.
fn credential(method: Method, issued: &Issued, source_token: &str) -> (String, String) {
    let (user, password) = match method {
        Method::PassThrough => ("jwt", source_token),
        Method::TokenExchange => ("oauth2", EXCHANGED),
        Method::Quay => ("team+puller", issued.quay.as_str()),
        Method::ArtifactoryOidc => ("jfrog-user", OIDC_ACCESS),
        Method::ArtifactoryAws => ("aws-node-role", AWS_ACCESS),
        Method::Cloudsmith => ("token", issued.cloudsmith.as_str()),
        Method::Vault => ("vault-user", "vault-password"),
        Method::KubernetesSecret => ("secret-user", "secret-password"),
    };
    (user.into(), password.into())
}

/// One server with every method's endpoint, as the focused tests' fakes (and the vendors'
/// documentation) give them; each answers only a token of the issuer valid for [`AUD`] (or,
/// for Artifactory's AWS endpoint, the node's signed `GetCallerIdentity` headers).
fn vendor(issuer: Arc<Issuer>, issued: &Issued) -> Fake {
    let (quay, cloudsmith) = (issued.quay.clone(), issued.cloudsmith.clone());
    fake(move |r| {
        let ok = |t: Option<&str>| t.is_some_and(|t| issuer.valid_for(t, AUD).is_some());
        let b = body_json(r);
        let h = |k: &str| r.headers.get(k).cloned().unwrap_or_default();
        let denied = json(401, r#"{"error":"invalid_grant"}"#);
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/oauth2/token") => {
                let f = form(&r.body);
                let grant = f.get("grant_type").map(String::as_str);
                if grant == Some("urn:ietf:params:oauth:grant-type:token-exchange")
                    && ok(f.get("subject_token").map(String::as_str))
                {
                    json(200, &json!({"access_token": EXCHANGED, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": EXCHANGE_TTL}).to_string())
                } else {
                    denied
                }
            }
            ("GET", "/oauth2/federation/robot/token") => match basic(r) {
                Some((robot, jwt)) if robot == "team+puller" && ok(Some(&jwt)) => {
                    json(200, &json!({"token": quay}).to_string())
                }
                _ => denied,
            },
            ("POST", "/access/api/v1/oidc/token")
                if b["provider_name"] == "k8s" && ok(b["subject_token"].as_str()) =>
            {
                json(200, &json!({"access_token": OIDC_ACCESS, "token_type": "Bearer", "expires_in": OIDC_TTL, "username": "jfrog-user"}).to_string())
            }
            ("POST", "/access/api/v1/aws/token")
                if h("authorization")
                    .starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/"))
                    && h("x-amz-security-token") == AWS_SESSION
                    && body_json(r) == json!({"expires_in": AWS_TTL}) =>
            {
                json(200, &json!({"access_token": AWS_ACCESS, "token_type": "Bearer", "expires_in": AWS_TTL, "username": "aws-node-role"}).to_string())
            }
            ("POST", "/openid/acme/")
                if b["service_slug"] == "k8s-puller" && ok(b["oidc_token"].as_str()) =>
            {
                json(200, &json!({"token": cloudsmith}).to_string())
            }
            ("POST", "/v1/auth/jwt/login") if b["role"] == "puller" && ok(b["jwt"].as_str()) => {
                json(200, &json!({"auth": {"client_token": VAULT_TOKEN, "lease_duration": 3600}}).to_string())
            }
            // Vault's aws method: the signed GetCallerIdentity, base64 in the body.
            ("POST", "/v1/auth/aws/login")
                if b["role"] == "puller"
                    && b["iam_http_request_method"] == "POST"
                    && vault_aws_header(r, "Authorization")
                        .starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/"))
                    && vault_aws_header(r, "X-Amz-Security-Token") == AWS_SESSION =>
            {
                json(200, &json!({"auth": {"client_token": VAULT_TOKEN, "lease_duration": 3600}}).to_string())
            }
            ("GET", "/v1/secret/data/registry/matrix") if h("x-vault-token") == VAULT_TOKEN => {
                json(200, &json!({"data": {"data": {"username": "vault-user", "password": "vault-password"}, "metadata": {"version": 1}}}).to_string())
            }
            ("GET", "/api/v1/namespaces/team/secrets/registry-pull")
                if ok(h("authorization").strip_prefix("Bearer ")) =>
            {
                let auths = json!({"auths": {HOST: {"username": "secret-user", "password": "secret-password"}}});
                let cfg = base64::engine::general_purpose::STANDARD.encode(auths.to_string());
                json(200, &json!({"kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": cfg}}).to_string())
            }
            _ => denied,
        }
    })
}

/// A header of the signed request a Vault `aws` login carries (base64 JSON of lists).
fn vault_aws_header(r: &Req, name: &str) -> String {
    let b = body_json(r);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b["iam_request_headers"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let headers: Value = serde_json::from_slice(&raw).unwrap_or_default();
    headers[name][0].as_str().unwrap_or_default().to_string()
}

/// The AWS session token of the node's signed request in `method`'s first request.
fn aws_session(method: Method, r: &Req) -> String {
    match method {
        Method::Vault => vault_aws_header(r, "X-Amz-Security-Token"),
        _ => r
            .headers
            .get("x-amz-security-token")
            .cloned()
            .unwrap_or_default(),
    }
}

/// The identity the vendor fake received in `method`'s first request, as sent: a token, or
/// for `artifactoryAws` and Vault's `aws` login the `Authorization` header of the signed
/// request.
fn received(method: Method, r: &Req) -> Option<String> {
    let b = body_json(r);
    let field = |k: &str| b[k].as_str().map(String::from);
    match method {
        Method::PassThrough => None,
        Method::TokenExchange => form(&r.body).get("subject_token").cloned(),
        Method::Quay => basic(r).map(|(_, jwt)| jwt),
        Method::ArtifactoryOidc => field("subject_token"),
        Method::ArtifactoryAws => r.headers.get("authorization").cloned(),
        Method::Cloudsmith => field("oidc_token"),
        Method::Vault => field("jwt")
            .or_else(|| Some(vault_aws_header(r, "Authorization")).filter(|a| !a.is_empty())),
        Method::KubernetesSecret => r
            .headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(String::from),
    }
}

/// The kubelet's entry for `validate-config`: kubelet-keyring for [`HOST`], with tokens for
/// [`AUD`].
const KUBELET: &str = "apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: kubelet-keyring
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    args: [get-credentials]
    defaultCacheDuration: 5m
    matchImages: [reg.example.com]
    tokenAttributes:
      serviceAccountTokenAudience: \"https://registry.example.com\"
      cacheType: ServiceAccount
      requireServiceAccount: false
";

/// What every pair shares: the issuer, the pod's token (sent with every request, so a node
/// source that used it would be caught), the node's token file's token, the vendor's tokens.
struct Grid {
    issuer: Arc<Issuer>,
    pod_token: String,
    file_token: String,
    issued: Issued,
}

impl Grid {
    /// Runs one pair; panics (with what went wrong) when it does not behave.
    fn check(&self, method: Method, source: Source) {
        let s = Sandbox::new();
        let file = s.tmp.path().join("node-token");
        write(&file, &format!("{}\n", self.file_token));
        let metadata = Metadata::start(self.issuer.clone());
        let server = vendor(self.issuer.clone(), &self.issued);
        let cfg = config(
            &s,
            &format!(
                "    - hosts: [{HOST}]\n      {}\n      method: {{{}}}\n",
                source.yaml(&file, &metadata),
                method.yaml(server.base(), source)
            ),
        );
        let meta_host = metadata.host();
        let env = [
            PLAIN_HTTP,
            ("GCE_METADATA_HOST", meta_host.as_str()),
            ("AWS_ACCESS_KEY_ID", AWS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", "matrix-aws-secret-key"),
            ("AWS_SESSION_TOKEN", AWS_SESSION),
        ];
        let out = run(
            &s,
            &cfg,
            &sa_request(IMAGE, &self.pod_token, &[]),
            &env,
            &[],
        );
        let kubelet = s.tmp.path().join("kubelet.yaml");
        write(&kubelet, KUBELET);
        let validate = s.run(
            &[
                "validate-config",
                "--plugin-config",
                &cfg,
                kubelet.to_str().expect("utf-8"),
            ],
            "",
        );

        if let Some(field) = refusal(method, source) {
            for (what, out) in [("the request", &out), ("validate-config", &validate)] {
                let line = assert_one_line_exit(out, 2, &[&self.pod_token]);
                assert!(
                    line.contains(field) && line.contains(method.name()),
                    "{what}: {line}"
                );
            }
            assert!(
                server.requests().is_empty(),
                "sent: {:?}",
                server.requests()
            );
            assert!(metadata.requests().is_empty(), "metadata asked");
            return;
        }

        assert!(
            validate.status.success(),
            "validate-config: {}{}",
            String::from_utf8_lossy(&validate.stdout),
            stderr(&validate)
        );
        let resp = stdout_json(&out);
        // The token the source gives, and how many metadata calls it takes.
        let (source_token, metadata_calls) = match source {
            Source::Pod => (self.pod_token.clone(), 0),
            Source::TokenFile => (self.file_token.clone(), 0),
            Source::Gcp | Source::Azure => {
                let issued = metadata.issued();
                assert_eq!(issued.len(), 1, "metadata tokens given");
                (issued[0].clone(), 1)
            }
            Source::Aws => (String::new(), 0),
        };
        let requests = metadata.requests();
        assert_eq!(requests.len(), metadata_calls, "metadata: {requests:?}");
        if let Some(r) = requests.first() {
            let want = match source {
                Source::Gcp => "/computeMetadata/v1/",
                _ => "/metadata/identity/oauth2/token?",
            };
            assert!(r.path.starts_with(want), "{source:?} asked {}", r.path);
        }
        assert_eq!(
            creds(&resp, HOST),
            credential(method, &self.issued, &source_token),
            "the credential"
        );
        // What the endpoint received is the source's token, nothing else.
        let sent = server.requests();
        let calls = match method {
            Method::PassThrough => 0,
            Method::Vault => 2,
            _ => 1,
        };
        assert_eq!(sent.len(), calls, "requests to the vendor");
        if let Some(first) = sent.first() {
            let got = received(method, first).unwrap_or_default();
            match source {
                Source::Aws => assert!(
                    got.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/"))
                        && aws_session(method, first) == AWS_SESSION,
                    "not the node's signed request: {:?}",
                    first.headers
                ),
                _ => assert!(
                    got == source_token,
                    "the endpoint received another token than the {} source's{}",
                    source.name(),
                    if got == self.pod_token {
                        " (the pod's)"
                    } else {
                        ""
                    }
                ),
            }
        }
        let duration = resp["cacheDuration"].as_str().unwrap_or_default();
        match life(method, source) {
            Life::Zero => assert_eq!(duration, "0s", "cacheDuration"),
            Life::Stored => {
                let secs = cache_secs(&resp);
                assert!((270..=300).contains(&secs), "cacheDuration {duration}");
            }
            Life::Expires(ttl) => {
                let (secs, max) = (cache_secs(&resp), ttl - 300);
                assert!(
                    secs <= max && secs >= max * 9 / 10 - 2,
                    "cacheDuration {duration} for a credential of {ttl} s"
                );
            }
        }
    }
}

/// The panic message of a failed pair.
fn message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "panicked".into()),
    }
}

#[test]
fn every_method_with_every_identity_source_answers_or_is_refused_in_one_line() {
    let issuer = Arc::new(Issuer::new());
    let grid = Grid {
        pod_token: issuer.sa_token(AUD, "team", "puller", "uid-1", 1, POD_TTL as i64),
        file_token: issuer.sign(&json!({"aud": AUD, "sub": "node-1", "exp": now() + FILE_TTL})),
        issued: Issued {
            quay: registry_token(&issuer, "quay-robot", QUAY_TTL),
            cloudsmith: registry_token(&issuer, "k8s-puller", CLOUDSMITH_TTL),
        },
        issuer,
    };
    let mut failures = Vec::new();
    let (mut answered, mut refused) = (0, 0);
    for method in METHODS {
        for source in SOURCES {
            match catch_unwind(AssertUnwindSafe(|| grid.check(method, source))) {
                Ok(()) if refusal(method, source).is_some() => refused += 1,
                Ok(()) => answered += 1,
                Err(p) => failures.push(format!(
                    "{} × {}: {}",
                    method.name(),
                    source.name(),
                    message(p)
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 40 pairs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!((answered, refused), (27, 13));
}

/// README's "Any registry" grid says ✓ exactly where [`refusal`] lets a pair work.
#[test]
fn the_readmes_method_by_identity_table_is_the_matrix() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Any registry").expect("the section")..];
    let head = section
        .lines()
        .position(|l| l.starts_with("| method | pod |"))
        .expect("the method × identity table");
    let lines: Vec<&str> = section
        .lines()
        .skip(head)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_string())
            .collect()
    };
    let columns = cells(lines[0]);
    let names: Vec<&str> = SOURCES.iter().map(|s| s.name()).collect();
    assert_eq!(&columns[1..=SOURCES.len()], &names[..], "{}", lines[0]);
    let rows: Vec<Vec<String>> = lines[2..].iter().map(|l| cells(l)).collect();
    let methods: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(methods, METHODS.map(Method::name), "the table's rows");
    for (method, row) in METHODS.iter().zip(&rows) {
        for (source, cell) in SOURCES.iter().zip(&row[1..]) {
            let want = if refusal(*method, *source).is_some() {
                "refused"
            } else {
                "✓"
            };
            assert_eq!(cell, want, "{} × {}", method.name(), source.name());
        }
    }
}
