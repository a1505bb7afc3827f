//! Users and their grants: which actions a user may perform on which buckets and key prefixes.
//!
//! A grant names a bucket pattern (`*` matches any run of characters), a key prefix and a set of
//! actions. A request is allowed when any of the user's grants covers its bucket, key and action.

use serde::Serialize;

use crate::secret::Secret;

/// The permission an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Read,
    Write,
    List,
    Delete,
    Admin,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Read,
        Action::Write,
        Action::List,
        Action::Delete,
        Action::Admin,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "read" => Action::Read,
            "write" => Action::Write,
            "list" => Action::List,
            "delete" => Action::Delete,
            "admin" => Action::Admin,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::List => "list",
            Action::Delete => "delete",
            Action::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub bucket: String,
    pub prefix: String,
    pub actions: Vec<Action>,
}

impl Grant {
    /// Every bucket, every key, the data actions (the default when a user lists no grants).
    pub fn all() -> Self {
        Self {
            bucket: "*".to_owned(),
            prefix: String::new(),
            actions: vec![Action::Read, Action::Write, Action::List, Action::Delete],
        }
    }

    fn covers_bucket(&self, bucket: &str) -> bool {
        wildcard_match(&self.bucket, bucket)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub access_key: String,
    pub secret_key: Secret,
    pub admin: bool,
    pub grants: Vec<Grant>,
}

/// What a request touches, for the permission check.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// The service itself (ListBuckets): always allowed, filtered per bucket afterwards.
    Service,
    Bucket(&'a str),
    /// Some keys of a bucket, checked one by one by the handler (DeleteObjects, POST uploads).
    AnyInBucket(&'a str),
    /// A listing of a bucket under a prefix.
    Listing {
        bucket: &'a str,
        prefix: &'a str,
    },
    Object {
        bucket: &'a str,
        key: &'a str,
    },
}

impl User {
    pub fn allows(&self, action: Action, resource: Resource<'_>) -> bool {
        if action == Action::Admin && self.admin {
            return true;
        }
        match resource {
            Resource::Service => action != Action::Admin,
            Resource::Bucket(bucket) => self.grants.iter().any(|g| {
                g.covers_bucket(bucket) && g.prefix.is_empty() && g.actions.contains(&action)
            }),
            Resource::AnyInBucket(bucket) => self
                .grants
                .iter()
                .any(|g| g.covers_bucket(bucket) && g.actions.contains(&action)),
            Resource::Listing { bucket, prefix } => self.grants.iter().any(|g| {
                g.covers_bucket(bucket)
                    && g.actions.contains(&action)
                    && prefix.starts_with(&g.prefix)
            }),
            Resource::Object { bucket, key } => self.grants.iter().any(|g| {
                g.covers_bucket(bucket) && key.starts_with(&g.prefix) && g.actions.contains(&action)
            }),
        }
    }

    /// Whether the bucket shows up in this user's ListBuckets.
    pub fn sees_bucket(&self, bucket: &str) -> bool {
        self.grants.iter().any(|g| g.covers_bucket(bucket))
    }

    /// The canonical owner id shown for the user (bucket and upload owners): stable, and not
    /// the secret.
    pub fn owner_id(&self) -> String {
        super::sigv4::sha256_hex(self.access_key.as_bytes())
    }
}

/// Glob matching where `*` matches any run of characters (including none).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(grants: Vec<Grant>) -> User {
        User {
            access_key: "a".into(),
            secret_key: Secret::new("s"),
            admin: false,
            grants,
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("logs-*", "logs-2026"));
        assert!(!wildcard_match("logs-*", "videos"));
        assert!(wildcard_match("a*c*e", "abcde"));
        assert!(!wildcard_match("abc", "abcd"));
    }

    #[test]
    fn prefix_grants_limit_objects_and_listings() {
        let u = user(vec![Grant {
            bucket: "media".into(),
            prefix: "public/".into(),
            actions: vec![Action::Read, Action::List],
        }]);
        let obj = |key| Resource::Object {
            bucket: "media",
            key,
        };
        assert!(u.allows(Action::Read, obj("public/a.png")));
        assert!(!u.allows(Action::Read, obj("private/a.png")));
        assert!(!u.allows(Action::Write, obj("public/a.png")));
        assert!(u.allows(
            Action::List,
            Resource::Listing {
                bucket: "media",
                prefix: "public/x"
            }
        ));
        // Listing the whole bucket would show keys outside the grant.
        assert!(!u.allows(
            Action::List,
            Resource::Listing {
                bucket: "media",
                prefix: ""
            }
        ));
        assert!(!u.allows(
            Action::List,
            Resource::Listing {
                bucket: "media",
                prefix: "private/"
            }
        ));
        assert!(!u.allows(
            Action::Read,
            Resource::Object {
                bucket: "other",
                key: "public/a"
            }
        ));
        assert!(u.sees_bucket("media"));
        assert!(!u.sees_bucket("other"));
        assert!(!u.allows(Action::Admin, Resource::Service));
    }
}
