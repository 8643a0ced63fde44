//! Docker config file parsing with the kubelet's Go semantics (spec sections 5.1 to 5.3).
//!
//! * `config.json`: an object; `auths` (any case, as Go's `encoding/json` folds keys) is the
//!   credential map, `HttpHeaders` must be an object of strings, everything else is ignored
//!   by the kubelet. `{}`, `null` and `{"auths":null}` parse, with no credentials.
//! * `credHelpers` (registry → helper suffix) and `credsStore` (helper suffix) are read too
//!   ([`ConfigJson`]), for the credential helpers this backend runs beyond the kubelet. They
//!   are read leniently, because the kubelet ignores them: a wrong type never fails the file;
//!   the key (or the one `credHelpers` entry) is ignored with a warning instead. As in Go, a
//!   repeated `credHelpers` merges, `null` clears it, and a `null` entry is an empty name.
//! * `.dockercfg`: the credential map itself (`null` parses, empty).
//! * An entry reads `username`, `password`, `email` (strings or null) and `auth`; a non-empty
//!   `auth` is base64 `user:pass` and overrides the other two. Any bad entry fails the file.
//!
//! * A parse for one image ([`ConfigJson::parse_for`], [`parse_dockercfg_for`]) keeps only the
//!   credential and `credHelpers` entries that could serve it, decided while each map is read
//!   ([`keep`]); every entry is still checked.
//!
//! Invalid UTF-8 inside strings is replaced by U+FFFD, as Go does. Error texts never contain
//! field values: every type error is phrased by us, not by serde (whose messages quote the
//! offending value, which may be a password).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use keyring_api::Secret;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

mod gojson;
pub mod keep;

use gojson::go_json_text;
pub(crate) use gojson::key_is;
pub use keep::{Keep, MAX_OTHERS_KEPT};
use keep::{Sieve, Sifted};

/// One credential entry of a docker config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// `username`, or the part of `auth` before the first `:`.
    pub username: String,
    /// `password`, or the part of `auth` after the first `:`.
    pub password: Secret<String>,
    /// `email`; read for type-checking, never sent.
    pub email: String,
}

/// A parsed file: the credential entries in document order (later duplicates replace earlier
/// ones in place, as Go's map assignment does).
pub type Entries = Vec<(String, Entry)>;

/// Why a file did not parse. The text is safe to log: it names fields, never values.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// A parsed `config.json`: the kubelet's credential entries plus the credential-helper
/// settings that this backend also honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigJson {
    /// `auths`, exactly as [`parse_config_json`] returns it.
    pub entries: Entries,
    /// `credHelpers`: registry key (exactly as written) → helper suffix. An empty suffix (or
    /// `null`) is kept: it means "no helper for this registry", as in the docker CLI. A parse
    /// for one image keeps only the keys that select a helper for it.
    pub cred_helpers: BTreeMap<String, String>,
    /// `credsStore`, when set to a non-empty string.
    pub creds_store: Option<String>,
    /// What was ignored and why, for the caller to log. Names keys and JSON types, never
    /// values; at most [`MAX_WARNINGS`] lines plus one summary.
    pub warnings: Vec<String>,
    /// `auths` entries not in `entries`: not kept by a parse for one image
    /// ([`ConfigJson::parse_for`]), or replaced by a later entry of the same key; every
    /// occurrence counted. The same whatever was kept: `entries.len() + dropped` is the number
    /// of entries the `auths` that count hold, so `explain` counts what it does not list
    /// exactly as a parse of everything would.
    pub dropped: usize,
}

/// The most warnings [`ConfigJson::parse`] keeps (a summary line counts the rest).
pub const MAX_WARNINGS: usize = 8;

impl ConfigJson {
    /// Parses a `config.json` document; fails exactly when [`parse_config_json`] fails.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        Self::parse_for(bytes, Keep::All)
    }

    /// [`ConfigJson::parse`], keeping only the `auths` and `credHelpers` entries `keep` says
    /// ([`keep`]): it fails exactly when that fails, warns as it does, and planning the
    /// answer for the image gives the same answer.
    pub fn parse_for(bytes: &[u8], keep: Keep<'_>) -> Result<Self, ParseError> {
        parse_with(bytes, ConfigJsonSeed(keep))
    }
}

/// Parses a `config.json` document: the `auths` entries, as the kubelet reads them.
pub fn parse_config_json(bytes: &[u8]) -> Result<Entries, ParseError> {
    ConfigJson::parse(bytes).map(|c| c.entries)
}

/// Parses a legacy `.dockercfg` document.
pub fn parse_dockercfg(bytes: &[u8]) -> Result<Entries, ParseError> {
    parse_dockercfg_for(bytes, Keep::All).map(|(entries, _)| entries)
}

/// [`parse_dockercfg`], keeping only the entries `keep` says; also returns how many entries
/// are not in the result (not kept or replaced, as [`ConfigJson::dropped`]).
pub fn parse_dockercfg_for(bytes: &[u8], keep: Keep<'_>) -> Result<(Entries, usize), ParseError> {
    parse_with(bytes, NullableMapSeed(keep))
}

fn parse_with<S, T: Default>(bytes: &[u8], seed: S) -> Result<T, ParseError>
where
    S: for<'de> DeserializeSeed<'de, Value = Option<T>>,
{
    let text = go_json_text(bytes);
    let mut de = serde_json::Deserializer::from_str(&text);
    let entries = seed
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| ParseError(e.to_string()))?;
    Ok(entries.unwrap_or_default())
}

/// Implements the visitor methods for JSON types a visitor does not accept, with an error
/// that names what was expected and never echoes the value.
macro_rules! reject_others {
    ($what:expr; $($method:ident($ty:ty)),*) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Err(E::custom(concat!("expected ", $what)))
        })*
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom(concat!("expected ", $what)))
        }
    };
}

/// `config.json`: object or null.
struct ConfigJsonSeed<'a>(Keep<'a>);

impl<'de> DeserializeSeed<'de> for ConfigJsonSeed<'_> {
    type Value = Option<ConfigJson>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ConfigJsonSeed<'_> {
    type Value = Option<ConfigJson>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a docker config.json object")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut auths: Option<(Entries, usize)> = None;
        let mut cred_helpers: BTreeMap<String, String> = BTreeMap::new();
        let mut creds_store = String::new();
        let mut warnings = Warnings::default();
        while let Some(key) = map.next_key::<String>()? {
            if key_is(&key, "auths") {
                // A repeated `auths` merges into the map decoded so far; null clears it.
                match map.next_value_seed(NullableMapSeed(self.0))? {
                    None => auths = None,
                    Some((more, dropped)) => {
                        let (acc, acc_dropped) = auths.get_or_insert_with(Default::default);
                        acc.extend(more);
                        let replaced;
                        (*acc, replaced) = dedup_last(std::mem::take(acc));
                        *acc_dropped += dropped + replaced;
                    }
                }
            } else if key_is(&key, "HttpHeaders") {
                map.next_value_seed(HeadersSeed)?;
            } else if key_is(&key, "credHelpers") {
                // Go decodes a repeated object into the same map; null makes it nil.
                map.next_value_seed(LenientHelpers {
                    sieve: Sieve::new(self.0, Sifted::CredHelpers),
                    helpers: &mut cred_helpers,
                    warnings: &mut warnings,
                })?;
            } else if key_is(&key, "credsStore") {
                // Go leaves a string unchanged on null.
                match map.next_value_seed(LenientString)? {
                    Lenient::Value(name) => creds_store = name,
                    Lenient::Null => {}
                    Lenient::Wrong(what) => {
                        warnings.push(format!("credsStore is {what}, not a string; ignored"))
                    }
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let (entries, dropped) = auths.unwrap_or_default();
        Ok(Some(ConfigJson {
            entries,
            dropped,
            cred_helpers,
            creds_store: Some(creds_store).filter(|s| !s.is_empty()),
            warnings: warnings.finish(),
        }))
    }
    reject_others!("a docker config.json object"; visit_str(&str), visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64));
}

/// Keeps the last value of each key, at the position of its first occurrence, as Go's map
/// assignment does (its iteration order is unspecified; ours is document order). Linear: a
/// config with thousands of registries must not cost a quadratic scan. Also returns how many
/// entries were replaced.
fn dedup_last(entries: Entries) -> (Entries, usize) {
    let mut position: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(entries.len());
    let mut out: Entries = Vec::with_capacity(entries.len());
    let mut replaced = 0;
    for (key, entry) in entries {
        match position.get(&key) {
            Some(&i) => {
                out[i].1 = entry;
                replaced += 1;
            }
            None => {
                position.insert(key.clone(), out.len());
                out.push((key, entry));
            }
        }
    }
    (out, replaced)
}

/// Warnings about ignored settings, capped so that a hostile file cannot flood the log.
#[derive(Default)]
struct Warnings {
    kept: Vec<String>,
    dropped: usize,
}

impl Warnings {
    fn push(&mut self, warning: String) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(warning);
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.kept.push(format!(
                "{} more credHelpers/credsStore problems ignored",
                self.dropped
            ));
        }
        self.kept
    }
}

/// A registry key for a warning: quoted, escaped, at most 100 characters.
fn shown_key(key: &str) -> String {
    let mut s: String = key.chars().take(100).collect();
    if s.len() < key.len() {
        s.push('…');
    }
    format!("{s:?}")
}

/// A leniently read value: what we wanted, `null`, or the JSON type found instead.
enum Lenient<T> {
    Value(T),
    Null,
    Wrong(&'static str),
}

/// A string, leniently. The value is first taken as raw JSON text, so that a number Go would
/// skip (`1e400`) never reaches serde_json's number parser, which refuses it.
struct LenientString;

impl<'de> DeserializeSeed<'de> for LenientString {
    type Value = Lenient<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(classify(&raw))
    }
}

/// What a raw JSON value is, as a [`Lenient`] string.
fn classify(raw: &RawValue) -> Lenient<String> {
    match raw.get().as_bytes().first() {
        Some(b'"') => {
            serde_json::from_str(raw.get()).map_or(Lenient::Wrong("a string"), Lenient::Value)
        }
        Some(b'n') => Lenient::Null,
        Some(b'{') => Lenient::Wrong("an object"),
        Some(b'[') => Lenient::Wrong("an array"),
        Some(b't' | b'f') => Lenient::Wrong("a boolean"),
        _ => Lenient::Wrong("a number"),
    }
}

/// `credHelpers`, leniently, merged into `helpers`: an object whose values are read as
/// [`LenientString`] does, one at a time, keeping only those `sieve` keeps. Whatever is of
/// the wrong type, kept or not, is a warning.
struct LenientHelpers<'s, 'k> {
    sieve: Sieve<'k>,
    helpers: &'s mut BTreeMap<String, String>,
    warnings: &'s mut Warnings,
}

impl<'de> DeserializeSeed<'de> for LenientHelpers<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Borrowed from the document, not copied: the value is first taken as raw text so
        // that anything but an object is classified, not refused (see `LenientString`).
        let raw = <&'de RawValue>::deserialize(d)?;
        if raw.get().starts_with('{') {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            return de.deserialize_map(self).map_err(de::Error::custom);
        }
        match classify(raw) {
            Lenient::Null => self.helpers.clear(),
            Lenient::Value(_) => self
                .warnings
                .push("credHelpers is a string, not an object of strings; ignored".into()),
            Lenient::Wrong(what) => self.warnings.push(format!(
                "credHelpers is {what}, not an object of strings; ignored"
            )),
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for LenientHelpers<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(registry) = map.next_key::<String>()? {
            let helper = classify(map.next_value::<&'de RawValue>()?);
            let name = match helper {
                Lenient::Value(name) => name,
                Lenient::Null => String::new(),
                Lenient::Wrong(what) => {
                    self.warnings.push(format!(
                        "credHelpers entry {} is {what}, not a string; ignored",
                        shown_key(&registry)
                    ));
                    continue;
                }
            };
            if self.sieve.keeps(&registry) {
                self.helpers.insert(registry, name);
            }
        }
        Ok(())
    }
}

/// `HttpHeaders`: null or an object of strings; the content is not used.
struct HeadersSeed;

impl<'de> DeserializeSeed<'de> for HeadersSeed {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeadersSeed {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("HttpHeaders to be an object of strings")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(StringSeed("HttpHeaders values"))?;
        }
        Ok(())
    }
    reject_others!("HttpHeaders to be an object of strings"; visit_str(&str), visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64));
}

/// A credential map (registry → entry), or null: the entries kept, and how many were not.
struct NullableMapSeed<'a>(Keep<'a>);

impl<'de> DeserializeSeed<'de> for NullableMapSeed<'_> {
    type Value = Option<(Entries, usize)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NullableMapSeed<'_> {
    type Value = Option<(Entries, usize)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of registry entries")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        let mut sieve = Sieve::new(self.0, Sifted::Auths);
        while let Some(key) = map.next_key::<String>()? {
            // Decoded whether kept or not: a bad entry anywhere fails the file.
            let entry = map.next_value_seed(EntrySeed)?;
            if sieve.keeps(&key) {
                entries.push((key, entry));
            }
        }
        let (entries, replaced) = dedup_last(entries);
        Ok(Some((entries, sieve.dropped + replaced)))
    }
    reject_others!("an object of registry entries"; visit_str(&str), visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64));
}

/// One entry (Go's `DockerConfigEntry.UnmarshalJSON`).
struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Entry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Entry;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a registry entry object")
    }
    fn visit_unit<E>(self) -> Result<Entry, E> {
        Ok(Entry::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        // Go leaves a string field unchanged on null and keeps the last of duplicate keys.
        let (mut username, mut password, mut email, mut auth) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            let slot = if key_is(&key, "username") {
                Some((&mut username, "username"))
            } else if key_is(&key, "password") {
                Some((&mut password, "password"))
            } else if key_is(&key, "email") {
                Some((&mut email, "email"))
            } else if key_is(&key, "auth") {
                Some((&mut auth, "auth"))
            } else {
                None
            };
            match slot {
                Some((slot, name)) => {
                    if let Some(v) = map.next_value_seed(StringSeed(name))? {
                        *slot = Some(v);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut entry = Entry {
            username: username.unwrap_or_default(),
            password: Secret::new(password.unwrap_or_default()),
            email: email.unwrap_or_default(),
        };
        if let Some(auth) = auth.filter(|a| !a.is_empty()) {
            let secret = Secret::new(auth);
            let (user, pass) = decode_auth(secret.expose()).map_err(de::Error::custom)?;
            entry.username = user;
            entry.password = pass;
        }
        Ok(entry)
    }
    reject_others!("a registry entry object"; visit_str(&str), visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64));
}

/// A string or null, for the named field.
pub(crate) struct StringSeed(pub(crate) &'static str);

impl<'de> DeserializeSeed<'de> for StringSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} to be a string", self.0)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.type_error())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.type_error())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.type_error())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.type_error())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.type_error())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.type_error())
    }
}

impl StringSeed {
    fn type_error<E: de::Error>(&self) -> E {
        E::custom(format_args!("field `{}` must be a string", self.0))
    }
}

/// Why an `auth` field did not decode. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not base64 (in the padded or unpadded form the value asks for).
    #[error("field `auth` is not valid base64")]
    Base64,
    /// Decoded, but without the `:` between user and password.
    #[error("unable to parse auth field, must be formatted as base64(username:password)")]
    NoColon,
}

/// Decodes an `auth` value: base64 `user:password`, split at the first `:`.
///
/// Go's rule: trim whitespace only to decide the padding; if the trimmed value ends in `=`,
/// decode the original with the padded alphabet, otherwise unpadded. `\r` and `\n` are
/// skipped anywhere; any other whitespace is an error. Trailing bits need not be zero.
pub fn decode_auth(auth: &str) -> Result<(String, Secret<String>), AuthError> {
    let config = GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true);
    let padded = auth.trim().ends_with('=');
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        config.with_decode_padding_mode(if padded {
            DecodePaddingMode::RequireCanonical
        } else {
            DecodePaddingMode::RequireNone
        }),
    );
    let cleaned: Secret<Vec<u8>> =
        Secret::new(auth.bytes().filter(|&b| b != b'\r' && b != b'\n').collect());
    let decoded = Secret::new(
        engine
            .decode(cleaned.expose())
            .map_err(|_| AuthError::Base64)?,
    );
    let bytes = decoded.expose();
    let colon = bytes
        .iter()
        .position(|&b| b == b':')
        .ok_or(AuthError::NoColon)?;
    let user = String::from_utf8_lossy(&bytes[..colon]).into_owned();
    let pass = String::from_utf8_lossy(&bytes[colon + 1..]).into_owned();
    Ok((user, Secret::new(pass)))
}

#[cfg(test)]
mod tests;
