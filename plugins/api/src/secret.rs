//! [`Secret`]: a value that must never reach a log, an error message or `Debug` output.
//!
//! The only ways to see the value are [`Secret::expose`] and serialization (the response to
//! the kubelet is the one place a credential is meant to go). `Debug` prints `Secret(..)`;
//! there is no `Display`. The backing memory is overwritten on drop, so a credential does not
//! linger in freed heap pages that a core dump could show.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A credential (password, token, refresh token) with a redacting `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T: Wipe>(T);

impl<T: Wipe> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself. Call it only where the value is sent to its one legitimate reader.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Wipe> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: Wipe> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<T: Wipe> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl<T: Wipe + Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Wipe + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// Types whose contents can be overwritten in place before they are freed.
pub trait Wipe {
    /// Overwrites the contents with zeros.
    fn wipe(&mut self);
}

impl Wipe for String {
    fn wipe(&mut self) {
        std::mem::take(self).into_bytes().wipe();
    }
}

impl Wipe for Vec<u8> {
    fn wipe(&mut self) {
        // Zero the whole allocation, not only the length. black_box keeps the compiler from
        // treating the stores as dead because the buffer is freed right after.
        self.resize(self.capacity(), 0);
        self.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&*self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_debug_output_never_shows_its_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(..))");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn serde_is_transparent() {
        let s: Secret<String> = serde_json::from_str("\"pw\"").unwrap();
        assert_eq!(s.expose(), "pw");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"pw\"");
    }
}
