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
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("catalog: {0}")]
    Index(Box<redb::Error>),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

macro_rules! catalog_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Index(Box::new(e.into()))
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
