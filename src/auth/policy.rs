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

#[derive(Debug, Clone)]
pub struct User {
    pub access_key: String,
    pub secret_key: Secret,
    pub admin: bool,
    pub grants: Vec<Grant>,
    /// No `grants` were configured and the server has other users: this user may use the
    /// buckets it created, and no others (`grants` is then unused).
    pub own_buckets: bool,
}

/// Printed by `config check` under the file's keys; a user limited to its own buckets is
/// printed without `grants`, as it was configured.
impl Serialize for User {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("User", 4)?;
        st.serialize_field("access_key", &self.access_key)?;
        st.serialize_field("secret_key", &self.secret_key)?;
        st.serialize_field("admin", &self.admin)?;
        if !self.own_buckets {
            st.serialize_field("grants", &self.grants)?;
        }
        st.end()
    }
}

impl<'a> From<Option<&'a String>> for BucketOwner<'a> {
    fn from(owner: Option<&'a String>) -> Self {
        owner.map_or(BucketOwner::None, |o| BucketOwner::Id(o))
    }
}

/// The owner of the bucket a request addresses, as the permission check needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketOwner<'a> {
    /// No bucket, or one that does not exist (the handler answers `NoSuchBucket`).
    None,
    /// The owner id recorded with the bucket (empty for a bucket no user here created).
    Id(&'a str),
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
    /// Whether the user may do `action` on `resource` in a bucket owned by `owner`.
    pub fn allows(&self, action: Action, resource: Resource<'_>, owner: BucketOwner<'_>) -> bool {
        if action == Action::Admin && self.admin {
            return true;
        }
        if self.own_buckets {
            return action != Action::Admin
                && match owner {
                    BucketOwner::None => true,
                    BucketOwner::Id(id) => id == self.owner_id(),
                };
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
    pub fn sees_bucket(&self, bucket: &str, owner: &str) -> bool {
        if self.own_buckets {
            return owner == self.owner_id();
        }
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

    const N: BucketOwner<'static> = BucketOwner::None;

    fn user(grants: Vec<Grant>) -> User {
        User {
            access_key: "a".into(),
            secret_key: Secret::new("s"),
            admin: false,
            grants,
            own_buckets: false,
        }
    }

    #[test]
    fn a_user_without_grants_among_several_uses_only_its_own_buckets() {
        let u = User {
            own_buckets: true,
            ..user(Vec::new())
        };
        let obj = Resource::Object {
            bucket: "b",
            key: "k",
        };
        let mine = u.owner_id();
        assert!(u.allows(Action::Write, obj, BucketOwner::Id(&mine)));
        assert!(!u.allows(Action::Read, obj, BucketOwner::Id("someone-else")));
        assert!(!u.allows(Action::Read, obj, BucketOwner::Id("")), "unowned");
        assert!(
            u.allows(Action::Write, Resource::Bucket("new"), N),
            "CreateBucket"
        );
        assert!(u.sees_bucket("b", &mine) && !u.sees_bucket("b", "someone-else"));
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
        assert!(u.allows(Action::Read, obj("public/a.png"), N));
        assert!(!u.allows(Action::Read, obj("private/a.png"), N));
        assert!(!u.allows(Action::Write, obj("public/a.png"), N));
        assert!(u.allows(
            Action::List,
            Resource::Listing {
                bucket: "media",
                prefix: "public/x"
            },
            N
        ));
        // Listing the whole bucket would show keys outside the grant.
        assert!(!u.allows(
            Action::List,
            Resource::Listing {
                bucket: "media",
                prefix: ""
            },
            N
        ));
        assert!(!u.allows(
            Action::List,
            Resource::Listing {
                bucket: "media",
                prefix: "private/"
            },
            N
        ));
        assert!(!u.allows(
            Action::Read,
            Resource::Object {
                bucket: "other",
                key: "public/a"
            },
            N
        ));
        assert!(u.sees_bucket("media", ""));
        assert!(!u.sees_bucket("other", ""));
        assert!(!u.allows(Action::Admin, Resource::Service, N));
    }
}
