//! Secrets (users' and the upstream's secret keys): a string that never prints itself, in
//! `Debug`, `Display` or a serialized config, and is wiped on drop. Its own module so that
//! `auth` and `config` can both use it without depending on each other.

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

#[cfg(test)]
mod tests {
    use super::*;

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
