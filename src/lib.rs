//! Lifeboat: an S3-compatible gateway that stores every object on local disk and, when an
//! upstream is configured, forwards it there. With no upstream it is a complete local S3 server.
//!
//! The request path is `server` (listener) → `router` (one `Operation` per S3 call) → `auth`
//! (SigV4, payload modes, grants) → `handlers` → `replication` (local-only, or `gateway`) →
//! `store` (blobs plus the catalog) and `upstream`. docs/ARCHITECTURE.md is the map.

pub mod admin;
pub mod auth;
pub mod bench;
pub mod body;
pub mod checksum;
pub mod conditional;
pub mod config;
pub mod context;
pub mod cors;
pub mod dead_letters;
pub mod error;
pub mod gateway;
pub mod handlers;
pub mod limits;
pub mod load;
pub mod metrics;
pub mod replication;
pub mod router;
pub mod secret;
pub mod server;
pub mod store;
pub mod time;
pub mod upstream;
pub mod xml;
