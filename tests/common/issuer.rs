//! A test token issuer: an RSA key (the openssl CLI makes it), real RS256 JWTs signed with
//! it, its JWKS, and signature verification, so a fake server checks a token as a real one
//! checks it against the issuer's JWKS. Service-account tokens carry the claims the API
//! server's TokenRequest puts in them for the kubelet (audience, expiry, issue time, the
//! `kubernetes.io` claim with namespace, pod, service account and node, `sub`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// The issuer of the test cluster.
pub const ISS: &str = "https://kubernetes.default.svc.cluster.local";

/// An issuer with its own key.
pub struct Issuer {
    dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
    /// The key ID in every header and in the JWKS.
    pub kid: String,
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

impl Issuer {
    /// A new issuer with a fresh 2048-bit key.
    pub fn new() -> Issuer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, public) = super::rsa_key(dir.path());
        Issuer {
            key: dir.path().join("key.pem"),
            public,
            kid: format!("test-{}", std::process::id()),
            dir,
        }
    }

    /// `claims` signed RS256 with the issuer's key, header type `JWT`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as("JWT", claims)
    }

    /// `claims` signed RS256 with the issuer's key, header type `typ` (`at+jwt` for an
    /// access token, RFC 9068).
    pub fn sign_as(&self, typ: &str, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": typ});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let data = self.dir.path().join("input");
        std::fs::write(&data, &input).expect("write");
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .arg(&data)
            .output()
            .expect("openssl dgst");
        assert!(out.status.success(), "openssl dgst -sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
    }

    /// A service-account token as the kubelet gets it for a pod: audience `aud`, the
    /// service account `ns/name` (UID `uid`), pod `pod-<nonce>`, valid for `ttl` seconds from
    /// now (negative: expired that long ago).
    pub fn sa_token(
        &self,
        aud: &str,
        ns: &str,
        name: &str,
        uid: &str,
        nonce: u32,
        ttl: i64,
    ) -> String {
        let iat = now() as i64 - 10;
        self.sign(&json!({
            "aud": [aud],
            "exp": iat + 10 + ttl,
            "iat": iat,
            "nbf": iat,
            "iss": ISS,
            "jti": format!("jti-{nonce}"),
            "kubernetes.io": {
                "namespace": ns,
                "node": {"name": "node-1", "uid": "node-uid-1"},
                "pod": {"name": format!("pod-{nonce}"), "uid": format!("pod-uid-{nonce}")},
                "serviceaccount": {"name": name, "uid": uid},
            },
            "sub": format!("system:serviceaccount:{ns}:{name}"),
        }))
    }

    /// The JWKS a relying party fetches from the issuer.
    pub fn jwks(&self) -> Value {
        let out = Command::new("openssl")
            .args(["rsa", "-pubin", "-modulus", "-noout", "-in"])
            .arg(&self.public)
            .output()
            .expect("openssl rsa");
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text.trim().trim_start_matches("Modulus=");
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"}]})
    }

    /// The claims of `jwt` when its signature is this issuer's (and its header names the
    /// key), else `None`. The expiry is the caller's to check.
    pub fn verify(&self, jwt: &str) -> Option<Value> {
        let mut parts = jwt.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header["alg"] != "RS256" || header["kid"] != self.kid.as_str() {
            return None;
        }
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let data = self.dir.path().join(format!("verify-{n}"));
        let sig = data.with_extension("sig");
        std::fs::write(&data, format!("{h}.{p}")).ok()?;
        std::fs::write(&sig, URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let ok = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&self.public)
            .arg("-signature")
            .arg(&sig)
            .arg(&data)
            .output()
            .ok()?
            .status
            .success();
        let _ = (std::fs::remove_file(&data), std::fs::remove_file(&sig));
        if !ok {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    }

    /// [`Issuer::verify`] plus: not expired, and `aud` names `audience`.
    pub fn valid_for(&self, jwt: &str, audience: &str) -> Option<Value> {
        let c = self.verify(jwt)?;
        let aud_ok = match &c["aud"] {
            Value::String(a) => a == audience,
            Value::Array(list) => list.iter().any(|a| a == audience),
            _ => false,
        };
        (aud_ok && c["exp"].as_u64().is_some_and(|e| e > now())).then_some(c)
    }
}
