//! Lifeboat: an S3-compatible gateway that stores every object on local disk and, when an
//! upstream is configured, forwards it there. With no upstream it is a complete local S3 server.
//!
//! The request path is `server` (listener) → `router` (one `Operation` per S3 call) → `auth`
//! (SigV4, payload modes, grants) → `handlers` → `store` (blobs plus the metadata index).

pub mod auth;
pub mod body;
pub mod checksum;
pub mod config;
pub mod error;
pub mod gateway;
pub mod handlers;
pub mod router;
pub mod server;
pub mod store;
pub mod upstream;
pub mod xml;
