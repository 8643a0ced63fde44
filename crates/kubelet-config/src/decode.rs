//! Decoding one `CredentialProviderConfig` file as the kubelet does (spec 2.1, 2.2).
//!
//! The kubelet turns YAML into JSON (first YAML document only), reads `kind` and `apiVersion`,
//! refuses kinds and versions it has not registered, then decodes strictly: an unknown field
//! (`providers[0].unknownField`) is an error, field names are case-sensitive, and a value of
//! the wrong JSON type (`defaultCacheDuration: 0` is a number, not a string) is fatal. `null`
//! means "absent" everywhere, as in Go.
//!
//! This module walks the parsed YAML itself instead of deriving `Deserialize`, so that it can
//! report every unknown field and type error with its kubelet path, not just the first, and so
//! that what the fields are depends on the config version and the kubelet release
//! (`tokenAttributes` exists only in config `v1` from 1.33, `cacheType` from 1.34).
//! Nothing here echoes an `env` value: those may hold secrets.

use keyring_api::Secret;
use serde::Deserialize;
use serde_norway::{Mapping, Value};

use crate::go_quote;
use crate::kubelet::Kubelet;

/// The config's API group.
pub const GROUP: &str = "kubelet.config.k8s.io";
/// The config's kind.
pub const KIND: &str = "CredentialProviderConfig";

const CONFIG_FIELDS: &[&str] = &["kind", "apiVersion", "providers"];
const PROVIDER_FIELDS: &[&str] = &[
    "name",
    "matchImages",
    "defaultCacheDuration",
    "apiVersion",
    "args",
    "env",
    "tokenAttributes",
];
const ENV_FIELDS: &[&str] = &["name", "value"];
const TOKEN_FIELDS: &[&str] = &[
    "serviceAccountTokenAudience",
    "cacheType",
    "requireServiceAccount",
    "requiredServiceAccountAnnotationKeys",
    "optionalServiceAccountAnnotationKeys",
];

/// One provider as the kubelet holds it after decoding, whatever the file's version.
#[derive(Debug, Clone, Default)]
pub struct Provider {
    /// `name`: the executable in the bin dir.
    pub name: String,
    /// `matchImages`.
    pub match_images: Vec<String>,
    /// `defaultCacheDuration` in nanoseconds; `None` when absent or null.
    pub default_cache_duration: Option<i64>,
    /// `apiVersion`: the protocol version.
    pub api_version: String,
    /// `args`.
    pub args: Vec<String>,
    /// `env`.
    pub env: Vec<EnvVar>,
    /// `tokenAttributes`.
    pub token_attributes: Option<TokenAttributes>,
    /// Fields whose value could not be decoded (already reported as errors); the rules about
    /// them are skipped rather than piling a "Required value" on top. `"*"`: the whole entry.
    pub undecodable: Vec<&'static str>,
}

impl Provider {
    /// Whether `field` decoded, so rules about it apply.
    pub fn decoded(&self, field: &str) -> bool {
        !self.undecodable.iter().any(|f| *f == field || *f == "*")
    }
}

/// An `env` entry. The value may be a secret (`AWS_SECRET_ACCESS_KEY`).
#[derive(Debug, Clone, Default)]
pub struct EnvVar {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: Secret<String>,
}

/// `tokenAttributes` (config `v1`, kubelet 1.33+).
#[derive(Debug, Clone, Default)]
pub struct TokenAttributes {
    /// `serviceAccountTokenAudience`.
    pub service_account_token_audience: String,
    /// `cacheType` (1.34+).
    pub cache_type: String,
    /// `requireServiceAccount`; `None` when absent.
    pub require_service_account: Option<bool>,
    /// `requiredServiceAccountAnnotationKeys`.
    pub required_service_account_annotation_keys: Vec<String>,
    /// `optionalServiceAccountAnnotationKeys`.
    pub optional_service_account_annotation_keys: Vec<String>,
    /// As [`Provider::undecodable`].
    pub undecodable: Vec<&'static str>,
}

impl TokenAttributes {
    /// Whether `field` decoded.
    pub fn decoded(&self, field: &str) -> bool {
        !self.undecodable.iter().any(|f| *f == field || *f == "*")
    }
}

/// Something wrong (or suspicious) found while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Index of the provider in the file, when it concerns one.
    pub provider: Option<usize>,
    /// The field's path (`providers[0].defaultCacheDuration`), when the message does not
    /// already name it.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A decoded file.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The config version (`v1`), once `kind` and `apiVersion` were accepted.
    pub version: Option<String>,
    /// The providers, in file order (even those with errors).
    pub providers: Vec<Provider>,
    /// Decoding errors: the kubelet refuses the file.
    pub errors: Vec<Problem>,
    /// Traps noticed while decoding.
    pub warnings: Vec<Problem>,
    /// The provider list itself is unknown (wrong kind, bad YAML, `providers` not a list).
    pub fatal: bool,
}

/// Decodes `text` (YAML or JSON) for `kubelet`.
pub fn decode(text: &str, kubelet: &Kubelet) -> Decoded {
    let mut w = Walker {
        kubelet,
        yaml: !is_json(text),
        out: Decoded::default(),
        provider: None,
    };
    w.document(text);
    w.out
}

/// JSON input has no YAML 1.1 reading ambiguities.
fn is_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// The first YAML document, and how many non-empty documents follow it.
fn first_document(text: &str) -> Result<(Value, usize), serde_norway::Error> {
    let mut docs = serde_norway::Deserializer::from_str(text);
    let first = match docs.next() {
        Some(doc) => Value::deserialize(doc)?,
        None => Value::Null,
    };
    // The kubelet never parses past the first document, so errors there do not count.
    let extra = docs
        .map(Value::deserialize)
        .filter(|doc| !matches!(doc, Ok(Value::Null)))
        .count();
    Ok((first, extra))
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

/// The JSON type the kubelet would see.
fn json_kind(v: &Value) -> &'static str {
    match untag(v) {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "array",
        Value::Mapping(_) => "object",
        Value::Tagged(_) => "value",
    }
}

/// A mapping key as YAML-to-JSON conversion spells it; `None` for a list or map used as a key.
fn key_text(k: &Value) -> Option<String> {
    match untag(k) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

/// What a plain (unquoted) scalar means to the kubelet's YAML 1.1 parser when YAML 1.2 reads
/// it as a string: `on`, `yes`, `010`, `1_000`, `0b11`.
fn yaml11_reading(s: &str) -> Option<&'static str> {
    const BOOLS: [&str; 16] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    if BOOLS.contains(&s) {
        return Some("a boolean");
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    // All-digit strings without a leading zero or `_` can only be strings when quoted.
    let leading_zero_or_underscore = body.len() > 1
        && body.as_bytes()[0].is_ascii_digit()
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && (body.starts_with('0') || body.contains('_'));
    let binary = body
        .strip_prefix("0b")
        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| matches!(b, b'0' | b'1' | b'_')));
    (leading_zero_or_underscore || binary).then_some("a number")
}

fn did_you_mean(key: &str, known: &[&str]) -> String {
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map(|k| {
            format!(
                " (field names are case-sensitive: did you mean {}?)",
                go_quote(k)
            )
        })
        .unwrap_or_default()
}

struct Walker<'k> {
    kubelet: &'k Kubelet,
    yaml: bool,
    out: Decoded,
    provider: Option<usize>,
}

impl Walker<'_> {
    fn error(&mut self, field: Option<&str>, message: String) {
        self.out.errors.push(Problem {
            provider: self.provider,
            field: field.map(str::to_string),
            message,
        });
    }

    fn warn(&mut self, field: Option<&str>, message: String) {
        self.out.warnings.push(Problem {
            provider: self.provider,
            field: field.map(str::to_string),
            message,
        });
    }

    fn fatal(&mut self, message: String) {
        self.error(None, message);
        self.out.fatal = true;
    }

    fn unknown_field(&mut self, path: &str, hint: String) {
        self.error(
            None,
            format!(
                "strict decoding error: unknown field {}{hint}",
                go_quote(path)
            ),
        );
    }

    /// A value of the wrong JSON type: fatal for the kubelet.
    fn type_error(&mut self, path: &str, go_type: &str, found: &Value, secret: bool) {
        let kind = json_kind(found);
        let mut msg = format!("json: cannot unmarshal {kind} into Go value of type {go_type}");
        match untag(found) {
            Value::Number(_) | Value::Bool(_) if go_type == "string" => {
                if secret {
                    msg.push_str("; quote the value");
                } else {
                    let text = match untag(found) {
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => String::new(),
                    };
                    msg.push_str(&format!("; quote it: {}", go_quote(&text)));
                }
            }
            Value::String(s) if go_type == "bool" && matches!(s.as_str(), "true" | "false") => {
                msg.push_str(&format!("; write it without quotes: {s}"));
            }
            _ => {}
        }
        self.error(Some(path), msg);
    }

    /// A string field: `Ok(None)` for null or absent.
    fn opt_string(&mut self, v: &Value, path: &str, secret: bool) -> Result<Option<String>, ()> {
        match untag(v) {
            Value::Null => Ok(None),
            Value::String(s) => {
                if self.yaml {
                    if let Some(what) = yaml11_reading(s) {
                        let shown = if secret {
                            "the value".to_string()
                        } else {
                            go_quote(s)
                        };
                        self.warn(
                            Some(path),
                            format!(
                                "if {shown} is written without quotes, the kubelet's YAML 1.1 \
                                 parser reads it as {what} and refuses the file: quote it"
                            ),
                        );
                    }
                }
                Ok(Some(s.clone()))
            }
            other => {
                self.type_error(path, "string", other, secret);
                Err(())
            }
        }
    }

    fn string(&mut self, v: &Value, path: &str) -> Result<String, ()> {
        self.opt_string(v, path, false)
            .map(Option::unwrap_or_default)
    }

    fn strings(&mut self, v: &Value, path: &str) -> Result<Vec<String>, ()> {
        match untag(v) {
            Value::Null => Ok(Vec::new()),
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (j, item) in items.iter().enumerate() {
                    match self.opt_string(item, &format!("{path}[{j}]"), false) {
                        Ok(s) => out.push(s.unwrap_or_default()),
                        Err(()) => ok = false,
                    }
                }
                if ok {
                    Ok(out)
                } else {
                    Err(())
                }
            }
            other => {
                self.type_error(path, "[]string", other, false);
                Err(())
            }
        }
    }

    /// The entries of an object, keys spelled as JSON would; reports keys JSON cannot have.
    fn entries<'v>(&mut self, m: &'v Mapping, path: &str) -> Vec<(String, &'v Value)> {
        let mut out = Vec::with_capacity(m.len());
        for (k, v) in m {
            match key_text(k) {
                Some(key) => out.push((key, v)),
                None => self.error(
                    (!path.is_empty()).then_some(path),
                    format!("yaml: a {} cannot be a map key", json_kind(k)),
                ),
            }
        }
        out
    }

    fn document(&mut self, text: &str) {
        let (mut root, extra) = match first_document(text) {
            Ok(parsed) => parsed,
            Err(e) => return self.fatal(format!("yaml: {e}")),
        };
        if extra > 0 {
            self.warn(
                None,
                format!(
                    "the file holds {extra} more YAML document(s) after the first; \
                     the kubelet reads only the first one"
                ),
            );
        }
        if let Err(e) = root.apply_merge() {
            return self.fatal(format!("yaml: {e}"));
        }
        let map = match untag(&root) {
            Value::Mapping(m) => m,
            Value::Null => {
                return self.fatal("Object 'Kind' is missing (the file is empty)".into())
            }
            other => {
                return self.fatal(format!(
                    "couldn't get version/kind; json parse error: the document is a {}, \
                     not an object",
                    json_kind(other)
                ))
            }
        };
        let entries = self.entries(map, "");
        let Some((kind, api_version)) = self.type_meta(&entries) else {
            return;
        };
        let Some(version) = self.check_gvk(&kind, &api_version) else {
            return;
        };
        self.out.version = Some(version.clone());
        for (key, value) in &entries {
            match key.as_str() {
                "kind" | "apiVersion" => {}
                "providers" => self.providers(value, &version),
                _ => self.unknown_field(key, did_you_mean(key, CONFIG_FIELDS)),
            }
        }
    }

    /// `kind` and `apiVersion`, read as the kubelet's `Interpret` does.
    fn type_meta(&mut self, entries: &[(String, &Value)]) -> Option<(String, String)> {
        let mut get = |name: &str| -> Option<String> {
            match entries
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| untag(v))
            {
                None | Some(Value::Null) => Some(String::new()),
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    self.fatal(format!(
                        "couldn't get version/kind; json parse error: json: cannot unmarshal \
                         {} into Go struct field .{name} of type string",
                        json_kind(other)
                    ));
                    None
                }
            }
        };
        let kind = get("kind")?;
        let api_version = get("apiVersion")?;
        Some((kind, api_version))
    }

    /// Checks group, version and kind; returns the version.
    fn check_gvk(&mut self, kind: &str, api_version: &str) -> Option<String> {
        if kind.is_empty() {
            self.fatal(format!(
                "Object 'Kind' is missing: write kind: {KIND} and apiVersion: {GROUP}/v1"
            ));
            return None;
        }
        // schema.ParseGroupVersion: "" and "/" are empty, "v1" has no group, "a/b/c" is wrong.
        let (group, version) = match api_version.split('/').collect::<Vec<_>>()[..] {
            _ if api_version == "/" => ("", ""),
            [v] => ("", v),
            [g, v] => (g, v),
            _ => {
                self.fatal(format!("unexpected GroupVersion string: {api_version}"));
                return None;
            }
        };
        if version.is_empty() {
            self.fatal(format!(
                "Object 'apiVersion' is missing: write apiVersion: {GROUP}/v1"
            ));
            return None;
        }
        let known = self.kubelet.config_versions();
        let registered = group == GROUP && known.contains(&version);
        let newest = known.last().copied().unwrap_or("v1alpha1");
        if registered && kind == KIND {
            return Some(version.to_string());
        }
        if registered && version == "v1beta1" && kind == "KubeletConfiguration" {
            self.fatal(format!(
                "failed to decode {} (wrong Kind): this is the kubelet's own config file; \
                 --image-credential-provider-config names a separate file of kind {KIND}",
                go_quote(kind)
            ));
            return None;
        }
        let hint = if group == "credentialprovider.kubelet.k8s.io" {
            format!(
                " ({group} is the plugin protocol's group, for each provider's apiVersion; \
                 the file's apiVersion is {GROUP}/{newest})"
            )
        } else if group == GROUP && ["v1alpha1", "v1beta1", "v1"].contains(&version) {
            format!(
                " (kubelet {} reads {GROUP} {}; {version} needs kubelet {}+)",
                self.kubelet.version,
                known.join(", "),
                Kubelet::release_of(version)
            )
        } else if registered {
            format!(" (the kind is {KIND})")
        } else {
            format!(" (expected apiVersion: {GROUP}/{newest} and kind: {KIND})")
        };
        self.fatal(format!(
            "no kind {} is registered for version {}{hint}",
            go_quote(kind),
            go_quote(api_version)
        ));
        None
    }

    fn providers(&mut self, value: &Value, version: &str) {
        match untag(value) {
            Value::Null => {}
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.provider = Some(i);
                    let p = self.provider_entry(i, item, version);
                    self.out.providers.push(p);
                }
                self.provider = None;
            }
            other => {
                self.type_error("providers", "[]CredentialProvider", other, false);
                self.out.fatal = true;
            }
        }
    }

    fn provider_entry(&mut self, i: usize, item: &Value, version: &str) -> Provider {
        let path = format!("providers[{i}]");
        let mut p = Provider::default();
        let map = match untag(item) {
            Value::Null => return p,
            Value::Mapping(m) => m,
            other => {
                self.type_error(&path, "CredentialProvider", other, false);
                p.undecodable.push("*");
                return p;
            }
        };
        let token_fields = version == "v1" && self.kubelet.has_token_attributes();
        for (key, v) in self.entries(map, &path) {
            let fpath = format!("{path}.{key}");
            match key.as_str() {
                "name" => match self.string(v, &fpath) {
                    Ok(s) => p.name = s,
                    Err(()) => p.undecodable.push("name"),
                },
                "matchImages" => match self.strings(v, &fpath) {
                    Ok(s) => p.match_images = s,
                    Err(()) => p.undecodable.push("matchImages"),
                },
                "defaultCacheDuration" => match self.opt_string(v, &fpath, false) {
                    Ok(None) => {}
                    Ok(Some(s)) => match keyring_api::duration::parse(&s) {
                        Ok(n) => p.default_cache_duration = Some(n),
                        Err(e) => {
                            self.error(Some(&fpath), e.to_string());
                            p.undecodable.push("defaultCacheDuration");
                        }
                    },
                    Err(()) => p.undecodable.push("defaultCacheDuration"),
                },
                "apiVersion" => match self.string(v, &fpath) {
                    Ok(s) => p.api_version = s,
                    Err(()) => p.undecodable.push("apiVersion"),
                },
                "args" => match self.strings(v, &fpath) {
                    Ok(s) => p.args = s,
                    Err(()) => p.undecodable.push("args"),
                },
                "env" => match self.env(v, &fpath) {
                    Ok(env) => p.env = env,
                    Err(()) => p.undecodable.push("env"),
                },
                "tokenAttributes" if token_fields => match self.token_attributes(v, &fpath) {
                    Ok(t) => p.token_attributes = t,
                    Err(()) => p.undecodable.push("tokenAttributes"),
                },
                "tokenAttributes" => {
                    let hint = if version == "v1" {
                        format!(
                            " (tokenAttributes needs kubelet 1.33+; this is kubelet {})",
                            self.kubelet.version
                        )
                    } else {
                        format!(" (tokenAttributes exists only in apiVersion {GROUP}/v1)")
                    };
                    self.unknown_field(&fpath, hint);
                }
                _ => self.unknown_field(&fpath, did_you_mean(&key, PROVIDER_FIELDS)),
            }
        }
        p
    }

    fn env(&mut self, v: &Value, path: &str) -> Result<Vec<EnvVar>, ()> {
        let items = match untag(v) {
            Value::Null => return Ok(Vec::new()),
            Value::Sequence(items) => items,
            other => {
                self.type_error(path, "[]ExecEnvVar", other, false);
                return Err(());
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (j, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{j}]");
            let map = match untag(item) {
                Value::Null => {
                    out.push(EnvVar::default());
                    continue;
                }
                Value::Mapping(m) => m,
                other => {
                    self.type_error(&ipath, "ExecEnvVar", other, false);
                    ok = false;
                    continue;
                }
            };
            let mut var = EnvVar::default();
            for (key, v) in self.entries(map, &ipath) {
                let fpath = format!("{ipath}.{key}");
                match key.as_str() {
                    "name" => match self.string(v, &fpath) {
                        Ok(s) => var.name = s,
                        Err(()) => ok = false,
                    },
                    "value" => match self.opt_string(v, &fpath, true) {
                        Ok(s) => var.value = Secret::new(s.unwrap_or_default()),
                        Err(()) => ok = false,
                    },
                    _ => self.unknown_field(&fpath, did_you_mean(&key, ENV_FIELDS)),
                }
            }
            out.push(var);
        }
        if ok {
            Ok(out)
        } else {
            Err(())
        }
    }

    fn token_attributes(&mut self, v: &Value, path: &str) -> Result<Option<TokenAttributes>, ()> {
        let map = match untag(v) {
            Value::Null => return Ok(None),
            Value::Mapping(m) => m,
            other => {
                self.type_error(path, "ServiceAccountTokenAttributes", other, false);
                return Err(());
            }
        };
        let mut t = TokenAttributes::default();
        for (key, v) in self.entries(map, path) {
            let fpath = format!("{path}.{key}");
            match key.as_str() {
                "serviceAccountTokenAudience" => match self.string(v, &fpath) {
                    Ok(s) => t.service_account_token_audience = s,
                    Err(()) => t.undecodable.push("serviceAccountTokenAudience"),
                },
                "cacheType" if self.kubelet.has_cache_type() => match self.string(v, &fpath) {
                    Ok(s) => t.cache_type = s,
                    Err(()) => t.undecodable.push("cacheType"),
                },
                "cacheType" => {
                    let hint = format!(
                        " (cacheType needs kubelet 1.34+; this is kubelet {})",
                        self.kubelet.version
                    );
                    self.unknown_field(&fpath, hint);
                }
                "requireServiceAccount" => match untag(v) {
                    Value::Null => {}
                    Value::Bool(b) => t.require_service_account = Some(*b),
                    other => {
                        self.type_error(&fpath, "bool", other, false);
                        t.undecodable.push("requireServiceAccount");
                    }
                },
                "requiredServiceAccountAnnotationKeys" => match self.strings(v, &fpath) {
                    Ok(s) => t.required_service_account_annotation_keys = s,
                    Err(()) => t.undecodable.push("requiredServiceAccountAnnotationKeys"),
                },
                "optionalServiceAccountAnnotationKeys" => match self.strings(v, &fpath) {
                    Ok(s) => t.optional_service_account_annotation_keys = s,
                    Err(()) => t.undecodable.push("optionalServiceAccountAnnotationKeys"),
                },
                _ => self.unknown_field(&fpath, did_you_mean(&key, TOKEN_FIELDS)),
            }
        }
        Ok(Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::{FeatureGates, KubeletVersion};

    fn kubelet(minor: u32) -> Kubelet {
        Kubelet::new(KubeletVersion::new(minor), &FeatureGates::default()).0
    }

    fn dec(text: &str) -> Decoded {
        decode(text, &kubelet(35))
    }

    fn errors(d: &Decoded) -> Vec<String> {
        d.errors
            .iter()
            .map(|p| match &p.field {
                Some(f) => format!("{f}: {}", p.message),
                None => p.message.clone(),
            })
            .collect()
    }

    const V1ALPHA1: &str =
        "apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: CredentialProviderConfig\n";
    const V1BETA1: &str =
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\n";
    const V1: &str = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n";
    const PROVIDER: &str = "providers:\n- name: test\n  matchImages: [\"registry.io/foobar\"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1alpha1\n";

    #[test]
    fn decodes_every_field() {
        let text = format!(
            "{V1}providers:\n- name: test\n  matchImages: [\"registry.io/foobar\", \"*.io\"]\n  \
             defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  \
             args: [get-credentials, -v]\n  env:\n  - name: A\n    value: \"1\"\n  - {{name: B, value: s3cret-value}}\n  \
             tokenAttributes:\n    serviceAccountTokenAudience: aud\n    cacheType: Token\n    \
             requireServiceAccount: true\n    requiredServiceAccountAnnotationKeys: [a]\n    \
             optionalServiceAccountAnnotationKeys: [b, c]\n"
        );
        let d = dec(&text);
        assert!(
            d.errors.is_empty() && d.warnings.is_empty() && !d.fatal,
            "{d:?}"
        );
        assert_eq!(d.version.as_deref(), Some("v1"));
        let p = &d.providers[0];
        assert_eq!(p.name, "test");
        assert_eq!(p.match_images, ["registry.io/foobar", "*.io"]);
        assert_eq!(p.default_cache_duration, Some(600_000_000_000));
        assert_eq!(p.api_version, "credentialprovider.kubelet.k8s.io/v1");
        assert_eq!(p.args, ["get-credentials", "-v"]);
        assert_eq!(p.env.len(), 2);
        assert_eq!(
            (p.env[1].name.as_str(), p.env[1].value.expose().as_str()),
            ("B", "s3cret-value")
        );
        let t = p.token_attributes.as_ref().unwrap();
        assert_eq!(t.service_account_token_audience, "aud");
        assert_eq!(t.cache_type, "Token");
        assert_eq!(t.require_service_account, Some(true));
        assert_eq!(t.required_service_account_annotation_keys, ["a"]);
        assert_eq!(t.optional_service_account_annotation_keys, ["b", "c"]);
        // Debug never shows an env value.
        assert!(!format!("{p:?}").contains("s3cret"));
    }

    #[test]
    fn json_decodes_like_yaml() {
        let json = r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"CredentialProviderConfig",
            "providers":[{"name":"test","matchImages":["registry.io"],"defaultCacheDuration":"0s",
            "apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","env":[{"name":"on","value":"yes"}]}]}"#;
        let d = dec(json);
        assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
        assert_eq!(d.providers[0].default_cache_duration, Some(0));
    }

    #[test]
    fn wrong_kind_and_api_version() {
        let d = dec(&format!(
            "apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: WrongKind\n{PROVIDER}"
        ));
        assert!(d.fatal && d.providers.is_empty());
        assert!(
            errors(&d)[0].starts_with(
                r#"no kind "WrongKind" is registered for version "kubelet.config.k8s.io/v1alpha1""#
            ),
            "{:?}",
            errors(&d)
        );
        let d = dec(&format!(
            "apiVersion: foobar/v1alpha1\nkind: CredentialProviderConfig\n{PROVIDER}"
        ));
        assert!(d.fatal);
        assert!(errors(&d)[0].starts_with(
            r#"no kind "CredentialProviderConfig" is registered for version "foobar/v1alpha1""#
        ));
        // The protocol group in the file's apiVersion: a common mix-up, explained.
        let d = dec(
            "apiVersion: credentialprovider.kubelet.k8s.io/v1\nkind: CredentialProviderConfig\n",
        );
        assert!(
            errors(&d)[0].contains("each provider's apiVersion"),
            "{:?}",
            errors(&d)
        );
        // The kubelet's own config.
        let d = dec("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n");
        assert!(
            errors(&d)[0].starts_with(r#"failed to decode "KubeletConfiguration" (wrong Kind)"#)
        );
        for (text, want) in [
            ("providers: []\n", "Object 'Kind' is missing"),
            (
                "kind: CredentialProviderConfig\n",
                "Object 'apiVersion' is missing",
            ),
            (
                "kind: CredentialProviderConfig\napiVersion: kubelet.config.k8s.io/\n",
                "Object 'apiVersion' is missing",
            ),
            (
                "kind: CredentialProviderConfig\napiVersion: a/b/c\n",
                "unexpected GroupVersion string: a/b/c",
            ),
            (
                "kind: CredentialProviderConfig\napiVersion: v1\n",
                r#"no kind "CredentialProviderConfig" is registered for version "v1""#,
            ),
            ("kind: 5\napiVersion: v1\n", "couldn't get version/kind"),
            ("", "Object 'Kind' is missing (the file is empty)"),
            ("# nothing\n", "Object 'Kind' is missing"),
            (
                "- a\n- b\n",
                "couldn't get version/kind; json parse error: the document is a array",
            ),
            ("a: [1,\n", "yaml: "),
            ("a: 1\na: 2\n", "yaml: duplicate entry with key \"a\""),
        ] {
            let d = dec(text);
            assert!(d.fatal, "{text:?}");
            assert!(
                errors(&d)[0].starts_with(want),
                "{text:?}: {:?}",
                errors(&d)
            );
        }
    }

    #[test]
    fn config_versions_follow_the_kubelet_release() {
        let d = decode(&format!("{V1}{PROVIDER}"), &kubelet(25));
        assert!(d.fatal);
        assert_eq!(
            errors(&d)[0],
            r#"no kind "CredentialProviderConfig" is registered for version "kubelet.config.k8s.io/v1" (kubelet 1.25 reads kubelet.config.k8s.io v1alpha1, v1beta1; v1 needs kubelet 1.26+)"#
        );
        assert!(decode(&format!("{V1BETA1}{PROVIDER}"), &kubelet(23)).fatal);
        assert!(!decode(&format!("{V1BETA1}{PROVIDER}"), &kubelet(24)).fatal);
        assert!(!decode(&format!("{V1ALPHA1}{PROVIDER}"), &kubelet(20)).fatal);
    }

    #[test]
    fn unknown_fields_are_strict_errors_with_their_paths() {
        let d = dec(&format!(
            "{V1ALPHA1}{PROVIDER}  unknownField: 1\n  env:\n  - name: A\n    valu: x\nextra: true\n"
        ));
        assert!(!d.fatal);
        assert_eq!(
            errors(&d),
            [
                r#"strict decoding error: unknown field "providers[0].unknownField""#,
                r#"strict decoding error: unknown field "providers[0].env[0].valu""#,
                r#"strict decoding error: unknown field "extra""#,
            ]
        );
        assert_eq!(d.errors[0].provider, Some(0));
        assert_eq!(d.errors[2].provider, None);
        // Field names are case-sensitive, and the error says so.
        let d = dec(&format!("{V1ALPHA1}providers:\n- matchimages: [a.io]\n"));
        assert_eq!(
            errors(&d),
            [
                r#"strict decoding error: unknown field "providers[0].matchimages" (field names are case-sensitive: did you mean "matchImages"?)"#
            ]
        );
    }

    #[test]
    fn token_attributes_exist_only_in_v1_from_1_33() {
        let token = "  tokenAttributes:\n    serviceAccountTokenAudience: aud\n    requireServiceAccount: true\n    cacheType: Token\n";
        for header in [V1ALPHA1, V1BETA1] {
            let d = dec(&format!("{header}{PROVIDER}{token}"));
            let e = errors(&d);
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].starts_with(r#"strict decoding error: unknown field "providers[0].tokenAttributes" (tokenAttributes exists only in apiVersion kubelet.config.k8s.io/v1)"#), "{e:?}");
            assert!(d.providers[0].token_attributes.is_none());
        }
        let v1 = format!("{V1}{PROVIDER}{token}");
        assert!(dec(&v1).errors.is_empty());
        let e = errors(&decode(&v1, &kubelet(32)));
        assert!(e[0].starts_with(r#"strict decoding error: unknown field "providers[0].tokenAttributes" (tokenAttributes needs kubelet 1.33+"#), "{e:?}");
        // 1.33 has tokenAttributes but no cacheType.
        let d = decode(&v1, &kubelet(33));
        assert_eq!(
            errors(&d),
            [
                r#"strict decoding error: unknown field "providers[0].tokenAttributes.cacheType" (cacheType needs kubelet 1.34+; this is kubelet 1.33)"#
            ]
        );
        assert_eq!(
            d.providers[0]
                .token_attributes
                .as_ref()
                .unwrap()
                .service_account_token_audience,
            "aud"
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_errors() {
        let d = dec(&format!(
            "{V1}providers:\n- name: 123\n  matchImages: [a.io, 5]\n  defaultCacheDuration: 0\n  \
             apiVersion: credentialprovider.kubelet.k8s.io/v1\n  args: x\n  env:\n  - name: A\n    value: 987654321\n  \
             tokenAttributes:\n    serviceAccountTokenAudience: aud\n    requireServiceAccount: \"true\"\n    cacheType: Token\n"
        ));
        assert!(!d.fatal);
        assert_eq!(
            errors(&d),
            [
                r#"providers[0].name: json: cannot unmarshal number into Go value of type string; quote it: "123""#,
                r#"providers[0].matchImages[1]: json: cannot unmarshal number into Go value of type string; quote it: "5""#,
                r#"providers[0].defaultCacheDuration: json: cannot unmarshal number into Go value of type string; quote it: "0""#,
                "providers[0].args: json: cannot unmarshal string into Go value of type []string",
                "providers[0].env[0].value: json: cannot unmarshal number into Go value of type string; quote the value",
                "providers[0].tokenAttributes.requireServiceAccount: json: cannot unmarshal string into Go value of type bool; write it without quotes: true",
            ]
        );
        // The env value (it may be a secret) is never repeated.
        assert!(!format!("{:?}", d.errors).contains("987654321"));
        let p = &d.providers[0];
        for f in ["name", "matchImages", "defaultCacheDuration", "args", "env"] {
            assert!(!p.decoded(f), "{f}");
        }
        assert!(p.decoded("apiVersion"));
        assert!(!p
            .token_attributes
            .as_ref()
            .unwrap()
            .decoded("requireServiceAccount"));
        // A provider list that is not a list: the providers are unknown.
        let d = dec(&format!("{V1}providers: {{name: x}}\n"));
        assert!(d.fatal);
        assert_eq!(errors(&d), ["providers: json: cannot unmarshal object into Go value of type []CredentialProvider"]);
        // An entry that is not an object.
        let d = dec(&format!("{V1}providers: [x]\n"));
        assert!(!d.fatal && !d.providers[0].decoded("name"));
    }

    #[test]
    fn durations_parse_like_go() {
        for (text, want) in [
            ("\"0\"", Some(0)),
            ("0s", Some(0)),
            ("1h30m", Some(5_400_000_000_000)),
            ("\"-1m\"", Some(-60_000_000_000)),
            ("null", None),
            ("~", None),
        ] {
            let d = dec(&format!(
                "{V1ALPHA1}providers:\n- defaultCacheDuration: {text}\n"
            ));
            assert!(d.errors.is_empty(), "{text}: {d:?}");
            assert_eq!(d.providers[0].default_cache_duration, want, "{text}");
        }
        let d = dec(&format!(
            "{V1ALPHA1}providers:\n- defaultCacheDuration: 1d\n"
        ));
        assert_eq!(
            errors(&d),
            [r#"providers[0].defaultCacheDuration: time: unknown unit "d" in duration "1d""#]
        );
        let d = dec(&format!(
            "{V1ALPHA1}providers:\n- defaultCacheDuration: \"\"\n"
        ));
        assert_eq!(
            errors(&d),
            [r#"providers[0].defaultCacheDuration: time: invalid duration """#]
        );
    }

    #[test]
    fn null_means_absent() {
        let d = dec(&format!("{V1}providers:\n- name: null\n  matchImages: null\n  env: [null]\n  tokenAttributes: null\n- null\n"));
        assert!(d.errors.is_empty(), "{d:?}");
        assert_eq!(d.providers.len(), 2);
        assert!(d.providers[0].name.is_empty() && d.providers[0].match_images.is_empty());
        assert!(d.providers[0].token_attributes.is_none());
        assert_eq!(d.providers[0].env.len(), 1);
        let d = dec(&format!("{V1}providers: null\n"));
        assert!(!d.fatal && d.providers.is_empty() && d.errors.is_empty());
    }

    #[test]
    fn only_the_first_yaml_document_counts_aliases_resolve_and_yaml_1_1_words_warn() {
        // Only the first document counts.
        let d = dec(&format!("{V1ALPHA1}{PROVIDER}---\nkind: Other\n---\n"));
        assert!(d.errors.is_empty());
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].message.contains("1 more YAML document"));
        // Anchors, aliases and merge keys.
        let d = dec(&format!(
            "{V1ALPHA1}providers:\n- &p\n  name: a\n  matchImages: [a.io]\n  defaultCacheDuration: 1m\n  \
             apiVersion: credentialprovider.kubelet.k8s.io/v1alpha1\n- <<: *p\n  name: b\n"
        ));
        assert!(d.errors.is_empty(), "{d:?}");
        assert_eq!(d.providers[1].name, "b");
        assert_eq!(d.providers[1].match_images, ["a.io"]);
        // Words the kubelet's YAML 1.1 parser reads as booleans or numbers.
        let d = dec(&format!("{V1ALPHA1}providers:\n- name: on\n  args: [\"010\", \"5000\", yes]\n  env:\n  - name: X\n    value: off\n"));
        assert!(d.errors.is_empty());
        let w: Vec<(Option<&str>, &str)> = d
            .warnings
            .iter()
            .map(|w| (w.field.as_deref(), w.message.as_str()))
            .collect();
        assert_eq!(w.len(), 4, "{w:?}");
        assert_eq!(w[0].0, Some("providers[0].name"));
        assert!(w[0].1.starts_with("if \"on\" is written without quotes, the kubelet's YAML 1.1 parser reads it as a boolean"));
        assert!(w[1].1.contains("\"010\"") && w[1].1.contains("a number"));
        assert_eq!(w[2].0, Some("providers[0].args[2]"));
        assert!(w[3].1.starts_with("if the value is written") && !w[3].1.contains("off"));
    }
}
