//! Integration tests: the real `lifeboat` binary on a random port, driven by aws-sdk-s3 (and by
//! raw HTTP where an SDK would never send what is being tested).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod bad_input;
mod bench;
mod browser;
mod buckets;
mod cache;
mod cli;
mod coherence;
mod copy;
mod cors;
mod crash;
mod dead_letters;
mod encryption;
mod faults;
mod fidelity;
mod gateway;
mod gateway_local;
mod hardening;
mod harness;
mod hostile;
mod limits;
mod listing;
mod migrate;
mod multipart;
mod objects;
mod post;
mod replication;
mod request_log;
mod scale_out;
mod tls;
mod upstream;
mod upstream_checksums;
mod warm;
