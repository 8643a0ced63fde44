//! The walk over the parsed YAML: every field checked against what this config version and
//! kubelet release know, every unknown field and type error reported with its kubelet path.

use serde::Deserialize;
use serde_norway::{Mapping, Value};

use keyring_api::Secret;

use super::{Decoded, EnvVar, Problem, Provider, TokenAttributes, GROUP, KIND};
use crate::go_quote;
use crate::kubelet::Kubelet;

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

/// Decodes `text` (YAML or JSON) for `kubelet`: [`super::decode`].
pub(super) fn document(text: &str, kubelet: &Kubelet) -> Decoded {
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
