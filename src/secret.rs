//! Secrets (users' and the upstream's secret keys, and the key blobs are sealed with): values
//! that never print themselves, in `Debug`, `Display` or a serialized config, and are wiped on
//! drop. Its own module so that `auth`, `config` and `store` can all use it without depending
//! on each other.

use std::fmt;

use serde::{Serialize, Serializer};

/// A secret string: never printed, compared in constant time by its users, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("REDACTED")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

/// The 32 bytes of `storage.encryption_key_file`: never printed, wiped on drop. Boxed, so a
/// move copies a pointer and not the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey(Box<[u8; EncryptionKey::LEN]>);

impl EncryptionKey {
    /// AES-256: a key of 32 bytes.
    pub const LEN: usize = 32;

    /// `None` unless `bytes` is exactly `LEN` long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut key = Box::new([0u8; Self::LEN]);
        key.copy_from_slice(
            bytes
                .get(..Self::LEN)
                .filter(|_| bytes.len() == Self::LEN)?,
        );
        Some(Self(key))
    }

    pub fn expose(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl Drop for EncryptionKey {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encryption_key_is_exactly_32_bytes_and_never_prints() {
        assert!(EncryptionKey::from_bytes(&[7; 31]).is_none());
        assert!(EncryptionKey::from_bytes(&[7; 33]).is_none());
        let k = EncryptionKey::from_bytes(&[7; 32]).expect("32 bytes");
        assert_eq!(format!("{k:?}"), "REDACTED");
        assert_eq!(k.expose(), &[7; 32]);
    }

    #[test]
    fn a_secret_prints_as_redacted_everywhere() {
        let s = Secret::new("very-secret-value");
        assert_eq!(format!("{s:?} {s}"), "REDACTED REDACTED");
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"REDACTED\"")
        );
        assert_eq!(s.expose(), "very-secret-value");
    }
}
