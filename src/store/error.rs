//! What can go wrong in the store, by meaning; `crate::error` maps each to its S3 code.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("no such key")]
    NoSuchKey,
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("bucket already owned by you")]
    BucketAlreadyOwnedByYou,
    #[error("bucket already exists")]
    BucketAlreadyExists,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("a part changed while the upload was being completed")]
    PartChanged,
    /// The disk is full (or would be: `storage.min_free_bytes`).
    #[error("no space left: {0}")]
    NoSpace(String),
    #[error("i/o: {0}")]
    Io(std::io::Error),
    #[error("catalog: {0}")]
    Index(Box<redb::Error>),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// The store holds sealed blobs and no key was given to read them.
    #[error(
        "the store holds {sealed} sealed (encrypted) blobs: set storage.encryption_key_file to \
         the key they were written with"
    )]
    KeyRequired { sealed: u64 },
    /// The key is not the one the store's sealed blobs were written with.
    #[error(
        "storage.encryption_key_file is not the key this store's sealed blobs were written \
         with ({path} records another)"
    )]
    WrongKey { path: String },
}

impl StoreError {
    /// Whether the catalog is held by another process (a running server): redb locks it.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Index(e) if matches!(**e, redb::Error::DatabaseAlreadyOpen))
    }
}

/// Whether an I/O error says the disk is full.
pub fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if is_no_space(&e) {
            StoreError::NoSpace(e.to_string())
        } else {
            StoreError::Io(e)
        }
    }
}

macro_rules! catalog_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                let e: redb::Error = e.into();
                match &e {
                    redb::Error::Io(io) if is_no_space(io) => StoreError::NoSpace(io.to_string()),
                    _ => StoreError::Index(Box::new(e)),
                }
            }
        }
    )*};
}
catalog_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
