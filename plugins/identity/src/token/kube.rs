//! A `kubernetes.io/dockerconfigjson` Secret in the pod's own namespace, read from the API
//! server with the pod's own token (as cri-o's crio-credential-provider does): pull secrets
//! without `imagePullSecrets` in every pod spec, authorised per service account by RBAC (the
//! service account needs `get` on that one Secret).
//!
//! `GET <apiServer>/api/v1/namespaces/<namespace>/secrets/<name>` with `Authorization:
//! Bearer <pod token>` (Kubernetes API, "read the specified Secret"); the namespace is the
//! token's own. The Secret must be of type `kubernetes.io/dockerconfigjson`; its
//! `data[".dockerconfigjson"]` (base64) holds `{"auths": {<key>: {username, password} |
//! {auth}}}`, and the entry for the image is chosen by the kubelet's own keyring rules
//! ([`keyring_api::pattern::Keyring`]: most specific key first, Docker Hub fallback). No
//! matching entry is an error naming the Secret, not an empty answer: the rule said this
//! Secret serves the host.

use std::collections::BTreeMap;

use base64::Engine as _;
use keyring_api::backend::Query;
use keyring_api::pattern::Keyring;
use keyring_api::{InvalidSetting, Secret};
use keyring_net::Route;
use serde::Deserialize;

use super::{json_reply, Issued, Validity};
use crate::config::KubernetesSecret;
use crate::error::{Error, Stage};
use crate::http::{Body, Call, Http};
use crate::identity::Pod;

/// The Secret type read.
pub const DOCKERCONFIGJSON: &str = "kubernetes.io/dockerconfigjson";
/// The largest CA file read.
const MAX_CA: u64 = 1 << 20;

#[derive(Deserialize)]
struct SecretObject {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    data: BTreeMap<String, Secret<String>>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Secret<String>>,
    #[serde(default)]
    auth: Option<Secret<String>>,
}

/// Reads the Secret and picks the entry for `query`'s image.
pub fn read(
    k: &KubernetesSecret,
    token: &Secret<String>,
    pod: &Pod,
    query: &Query,
    http: &mut Http,
) -> Result<Issued, Error> {
    if let Some(ca) = &k.ca_file {
        http.trust_only(read_ca(ca)?)?;
    }
    let url = format!(
        "{}/api/v1/namespaces/{}/secrets/{}",
        k.api_server.trim_end_matches('/'),
        pod.namespace,
        k.secret
    );
    let bearer = Secret::new(format!("Bearer {}", token.expose()));
    let hint = format!(
        "grant service account {}/{} get on secret {} (a Role and RoleBinding in its namespace)",
        pod.namespace, pod.service_account, k.secret
    );
    let reply = http.send(&Call {
        stage: Stage::Secret,
        url: &url,
        headers: &[("Authorization", bearer.expose())],
        body: Body::Get,
        route: Route::Proxied,
        hint: &hint,
    })?;
    let object: SecretObject = json_reply(&reply, Stage::Secret, &url, &hint)?;
    let problem = |p: String| Error::Response {
        stage: Stage::Secret,
        url: crate::http::shown(&url),
        problem: p,
    };
    if object.kind != DOCKERCONFIGJSON {
        return Err(problem(format!(
            "the Secret is of type {:?}, not {DOCKERCONFIGJSON}",
            object.kind
        )));
    }
    let encoded = object
        .data
        .get(".dockerconfigjson")
        .ok_or_else(|| problem("the Secret has no .dockerconfigjson".into()))?;
    let decoded = Secret::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.expose().trim())
            .map_err(|_| problem(".dockerconfigjson is not base64".into()))?,
    );
    let config: DockerConfig = serde_json::from_slice(decoded.expose())
        .map_err(|_| problem(".dockerconfigjson is not a docker config (auths)".into()))?;
    let mut keyring = Keyring::new();
    for (key, entry) in config.auths {
        // A key the kubelet would skip is skipped here too.
        let _ = keyring.add(&key, entry);
    }
    let (found, _) = keyring.lookup(&query.target);
    let entry = found.first().map(|e| &e.value).ok_or_else(|| {
        problem(format!(
            "no auths entry of the Secret matches {}",
            query.image.as_str()
        ))
    })?;
    let (username, password) = credentials(entry).ok_or_else(|| {
        problem("its entry for the image has no usable username and password".into())
    })?;
    Ok(Issued {
        username,
        password,
        validity: Validity::Stored,
    })
}

/// `username`/`password`, or the `auth` field's `user:password` (which wins, as in the
/// kubelet's docker config reading).
fn credentials(e: &Entry) -> Option<(String, Secret<String>)> {
    if let Some(auth) = &e.auth {
        let cleaned: String = auth
            .expose()
            .chars()
            .filter(|c| !matches!(c, '\r' | '\n'))
            .collect();
        let cleaned = Secret::new(cleaned);
        let bytes = Secret::new(
            base64::engine::general_purpose::STANDARD
                .decode(cleaned.expose())
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.expose())
                })
                .ok()?,
        );
        let text = std::str::from_utf8(bytes.expose()).ok()?;
        let (user, pass) = text.split_once(':')?;
        return Some((user.to_string(), Secret::new(pass.to_string())));
    }
    Some((e.username.clone()?, e.password.clone()?))
}

/// The certificates of a PEM CA file.
fn read_ca(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, Error> {
    use rustls_pki_types::pem::PemObject;
    let bad = |p: String| -> Error {
        InvalidSetting::new(format!("kubernetesSecret.caFile {}", path.display()), p).into()
    };
    let pem =
        keyring_api::file::read(path, MAX_CA).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_larger_than_the_cap_is_refused_not_cut_short() {
        let path = std::env::temp_dir().join(format!("keyring-kube-ca-{}.pem", std::process::id()));
        let mut pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
        pem.resize(MAX_CA as usize + 1, b'\n');
        std::fs::write(&path, &pem).expect("write");
        let read = read_ca(&path);
        std::fs::remove_file(&path).expect("remove");
        let e = read.expect_err("a CA file past the cap must not be read in part");
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    }
}
