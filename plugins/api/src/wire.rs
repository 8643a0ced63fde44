//! The kubelet credential-provider wire protocol, group `credentialprovider.kubelet.k8s.io`,
//! versions `v1`, `v1beta1` and `v1alpha1` (spec section 1).
//!
//! Inbound: [`decode_request`] takes the bytes the kubelet writes on stdin and checks `kind`,
//! `apiVersion` and `image`. Unknown fields are ignored (newer kubelets add fields); the v1
//! service-account fields are read only in v1, as the kubelet sends them only there. Error
//! texts never quote field values, so a token sent in the wrong field cannot reach stderr.
//!
//! Outbound: [`Response`] serializes to exactly the fields the kubelet's strict decoder knows,
//! in the order `kind`, `apiVersion`, `cacheKeyType`, `cacheDuration`, `auth`; each credential
//! is `{"username","password"}` and nothing else. The response always carries the request's
//! `apiVersion`, because the kubelet rejects any other.
//!
//! The three versions have the same response schema and differ in the request only by the v1
//! service-account fields, so one set of types carries an [`ApiVersion`] tag instead of three
//! copies of each struct.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::secret::Secret;

/// The API group of requests and responses.
pub const GROUP: &str = "credentialprovider.kubelet.k8s.io";
/// `kind` of a request.
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
/// `kind` of a response.
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";
/// Largest request accepted. A request is an image name, a service-account token (a JWT of a
/// few KiB) and a handful of annotations (Kubernetes caps all of an object's annotations at
/// 256 KiB), so 1 MiB is generous and still bounds what a broken caller can make us hold.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// How the kubelet keys its cache of an answer (`cacheKeyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKeyType {
    /// Per repository: the answer holds only for this image's repository.
    Image,
    /// Per registry (text before the first `/`): the answer holds for every image there.
    Registry,
    /// For every image the provider's `matchImages` admits.
    Global,
}

impl CacheKeyType {
    /// The wire spelling (`Image`, `Registry`, `Global`; exact case).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKeyType::Image => "Image",
            CacheKeyType::Registry => "Registry",
            CacheKeyType::Global => "Global",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            CacheKeyType::Image,
            CacheKeyType::Registry,
            CacheKeyType::Global,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiVersion {
    /// `credentialprovider.kubelet.k8s.io/v1alpha1` (kubelet 1.20+).
    V1Alpha1,
    /// `credentialprovider.kubelet.k8s.io/v1beta1` (kubelet 1.24+).
    V1Beta1,
    /// `credentialprovider.kubelet.k8s.io/v1` (kubelet 1.26+).
    V1,
}

impl ApiVersion {
    /// Every version, newest first.
    pub const ALL: [ApiVersion; 3] = [ApiVersion::V1, ApiVersion::V1Beta1, ApiVersion::V1Alpha1];

    /// The full `apiVersion` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1Alpha1 => "credentialprovider.kubelet.k8s.io/v1alpha1",
            ApiVersion::V1Beta1 => "credentialprovider.kubelet.k8s.io/v1beta1",
            ApiVersion::V1 => "credentialprovider.kubelet.k8s.io/v1",
        }
    }

    /// Parses a full `apiVersion` string.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded `CredentialProviderRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The version the kubelet spoke; the response must use the same.
    pub api_version: ApiVersion,
    /// `image` as sent: the kubelet sends a normalized repository name; a person may type
    /// any reference. Normalize with [`crate::ImageName::parse`].
    pub image: String,
    /// v1 only (kubelet 1.33+, token mode): the pod's service-account token.
    pub service_account_token: Option<Secret<String>>,
    /// v1 only (kubelet 1.33+, token mode): the configured annotations of the service account.
    pub service_account_annotations: BTreeMap<String, String>,
}

/// Why a request was refused. Texts name fields, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Nothing on stdin.
    #[error("empty request: expected a CredentialProviderRequest JSON document on stdin")]
    Empty,
    /// More than [`MAX_REQUEST_BYTES`].
    #[error("request is larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// Not JSON (the serde_json text gives line and column, never content).
    #[error("request is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("request must be a JSON object")]
    NotObject,
    /// A field is missing or has the wrong type.
    #[error("request field `{field}` {problem}")]
    Field {
        /// The JSON field name.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `kind` is not `CredentialProviderRequest`.
    #[error("request kind must be \"CredentialProviderRequest\", got {0:?}")]
    Kind(String),
    /// `apiVersion` is not one of the three.
    #[error("unsupported request apiVersion {0:?}: supported are credentialprovider.kubelet.k8s.io/v1, v1beta1 and v1alpha1")]
    ApiVersion(String),
}

fn field(field: &'static str, problem: &'static str) -> RequestError {
    RequestError::Field { field, problem }
}

/// Shortens a value we echo in an error (kind, apiVersion) so a stray blob cannot flood stderr.
fn echo(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Decodes a request from the bytes read on stdin.
pub fn decode_request(bytes: &[u8]) -> Result<Request, RequestError> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::Empty);
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| RequestError::Json(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(RequestError::NotObject);
    };
    let mut string = |name: &'static str| -> Result<Option<String>, RequestError> {
        match obj.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(field(name, "must be a string")),
        }
    };
    let kind = string("kind")?.ok_or_else(|| field("kind", "is missing"))?;
    let api_version = string("apiVersion")?.ok_or_else(|| field("apiVersion", "is missing"))?;
    // apiVersion first: a request of an unknown version says so even if its kind differs.
    let version = ApiVersion::parse(&api_version)
        .ok_or_else(|| RequestError::ApiVersion(echo(&api_version)))?;
    if kind != REQUEST_KIND {
        return Err(RequestError::Kind(echo(&kind)));
    }
    let image = string("image")?.ok_or_else(|| field("image", "is missing"))?;
    if image.is_empty() {
        return Err(field("image", "is empty"));
    }
    let mut request = Request {
        api_version: version,
        image,
        service_account_token: None,
        service_account_annotations: BTreeMap::new(),
    };
    if version == ApiVersion::V1 {
        request.service_account_token = string("serviceAccountToken")?
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        match obj.remove("serviceAccountAnnotations") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    let Value::String(v) = v else {
                        return Err(field("serviceAccountAnnotations", "values must be strings"));
                    };
                    request.service_account_annotations.insert(k, v);
                }
            }
            Some(_) => return Err(field("serviceAccountAnnotations", "must be an object")),
        }
    }
    Ok(request)
}

/// One credential, as the kubelet's `AuthConfig`: `username` and `password`, nothing else.
/// (Deserialize is for our own cache files, which store answers in this shape.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuthConfig {
    /// The user name; not secret (`AWS`, `oauth2accesstoken`, a robot account name).
    pub username: String,
    /// The password or token.
    pub password: Secret<String>,
}

/// A `CredentialProviderResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Must equal the request's.
    pub api_version: ApiVersion,
    /// How the kubelet keys its cache of this answer.
    pub cache_key_type: CacheKeyType,
    /// How long the kubelet may cache it; `None` leaves the provider's `defaultCacheDuration`,
    /// `Some(ZERO)` means "do not cache".
    pub cache_duration: Option<Duration>,
    /// Registry pattern → credential.
    pub auth: BTreeMap<String, AuthConfig>,
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", RESPONSE_KIND)?;
        map.serialize_entry("apiVersion", self.api_version.as_str())?;
        map.serialize_entry("cacheKeyType", self.cache_key_type.as_str())?;
        if let Some(d) = self.cache_duration {
            map.serialize_entry("cacheDuration", &crate::duration::format(d))?;
        }
        map.serialize_entry("auth", &self.auth)?;
        map.end()
    }
}

impl Response {
    /// The response as one compact JSON document followed by a newline.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing strings and maps of strings into a Vec cannot fail.
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<Request, RequestError> {
        decode_request(json.as_bytes())
    }

    #[test]
    fn decodes_the_exact_bytes_the_kubelet_writes_in_every_version() {
        for v in ApiVersion::ALL {
            let line = format!(
                "{{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"{v}\",\"image\":\"test.registry.io/foobar\"}}\n"
            );
            let r = req(&line).unwrap();
            assert_eq!(r.api_version, v);
            assert_eq!(r.image, "test.registry.io/foobar");
            assert_eq!(r.service_account_token, None);
        }
        let r = req(r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"test.registry.io/foobar","serviceAccountToken":"service-account-token","serviceAccountAnnotations":{"domain.io/annotation1":"value1"}}"#).unwrap();
        assert_eq!(
            r.service_account_token
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("service-account-token")
        );
        assert_eq!(
            r.service_account_annotations
                .get("domain.io/annotation1")
                .map(String::as_str),
            Some("value1")
        );
    }

    #[test]
    fn ignores_unknown_fields_and_v1_only_fields_elsewhere() {
        let r = req(r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"a.io/b","serviceAccountToken":"t","future":{"x":1}}"#).unwrap();
        assert_eq!(r.service_account_token, None);
        assert_eq!(r.api_version, ApiVersion::V1Beta1);
    }

    #[test]
    fn refuses_bad_requests_with_clear_errors() {
        let v1 = "credentialprovider.kubelet.k8s.io/v1";
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty request"),
            ("  \n".into(), "empty request"),
            ("{".into(), "not valid JSON"),
            ("[]".into(), "must be a JSON object"),
            (r#"{"apiVersion":"x","image":"a"}"#.into(), "`kind` is missing"),
            (format!(r#"{{"kind":"CredentialProviderRequest","apiVersion":"{v1}"}}"#), "`image` is missing"),
            (format!(r#"{{"kind":"CredentialProviderRequest","apiVersion":"{v1}","image":""}}"#), "`image` is empty"),
            (format!(r#"{{"kind":"CredentialProviderRequest","apiVersion":"{v1}","image":5}}"#), "`image` must be a string"),
            (format!(r#"{{"kind":"Pod","apiVersion":"{v1}","image":"a"}}"#), "kind must be"),
            (r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v2","image":"a"}"#.into(), "unsupported request apiVersion"),
            (format!(r#"{{"kind":"CredentialProviderRequest","apiVersion":"{v1}","image":"a","serviceAccountAnnotations":"secret-token"}}"#), "must be an object"),
        ];
        for (input, want) in cases {
            let err = req(&input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(!err.contains("secret-token"));
        }
        let big = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert_eq!(decode_request(&big), Err(RequestError::TooLarge));
    }

    #[test]
    fn encodes_exact_json_in_every_version() {
        for v in ApiVersion::ALL {
            let mut auth = BTreeMap::new();
            auth.insert(
                "reg.io".to_string(),
                AuthConfig {
                    username: "u".into(),
                    password: Secret::new("p".into()),
                },
            );
            let resp = Response {
                api_version: v,
                cache_key_type: CacheKeyType::Registry,
                cache_duration: Some(Duration::from_secs(300)),
                auth,
            };
            let want = format!(
                "{{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"{v}\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"5m0s\",\"auth\":{{\"reg.io\":{{\"username\":\"u\",\"password\":\"p\"}}}}}}\n"
            );
            assert_eq!(String::from_utf8(resp.to_json()).unwrap(), want);
        }
        let empty = Response {
            api_version: ApiVersion::V1,
            cache_key_type: CacheKeyType::Image,
            cache_duration: None,
            auth: BTreeMap::new(),
        };
        assert_eq!(
            String::from_utf8(empty.to_json()).unwrap(),
            "{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"cacheKeyType\":\"Image\",\"auth\":{}}\n"
        );
    }
}
