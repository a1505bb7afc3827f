//! Conditional writes arbitrated by the upstream (README, "Scale-out"). `If-None-Match: *` and
//! `If-Match: <etag>` on PutObject, CompleteMultipartUpload and CopyObject are checked against
//! this node's state and then sent with the upstream write, so that of several nodes racing on
//! one key, the upstream lets exactly one win. Whether the upstream enforces the headers is
//! found out once per process with a probe object; an upstream that ignores them leaves the
//! local check alone to decide. While the upstream cannot be reached a conditional write
//! cannot be arbitrated: it is `503` with `Retry-After`, unless
//! `upstream.offline_conditional_writes = "local"` lets the local check decide.

use std::sync::atomic::{AtomicU8, Ordering};

use http::Method;

use super::Gateway;
use super::write::{Write, refusal};
use crate::config::{OfflineConditionalWrites, WritePolicy};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::{ObjectMeta, Precondition, StoreError, SyncState};
use crate::upstream::{Disposition, UpstreamError, UpstreamRequest};

/// Where probe objects are written (and deleted again at once).
const PROBE_PREFIX: &str = ".lifeboat-probe/conditional-";

/// A 32-digit ETag no object has: `If-Match` on it must fail.
const NO_SUCH_ETAG: &str = "\"00000000000000000000000000000000\"";

/// What this process has found out about the upstream's conditional writes.
#[derive(Default)]
pub struct ConditionalSupport {
    state: AtomicU8,
    /// One probe at a time; the others wait for its answer.
    probing: tokio::sync::Mutex<()>,
}

/// Whether the upstream enforces `If-None-Match` and `If-Match` on writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Unknown,
    Enforced,
    Ignored,
}

impl ConditionalSupport {
    const ENFORCED: u8 = 1;
    const IGNORED: u8 = 2;

    pub fn get(&self) -> Enforcement {
        match self.state.load(Ordering::Relaxed) {
            Self::ENFORCED => Enforcement::Enforced,
            Self::IGNORED => Enforcement::Ignored,
            _ => Enforcement::Unknown,
        }
    }

    fn set(&self, e: Enforcement) {
        let v = match e {
            Enforcement::Unknown => 0,
            Enforcement::Enforced => Self::ENFORCED,
            Enforcement::Ignored => Self::IGNORED,
        };
        self.state.store(v, Ordering::Relaxed);
    }
}

impl Enforcement {
    /// The status document's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Unknown => "unknown",
            Enforcement::Enforced => "upstream",
            Enforcement::Ignored => "local",
        }
    }
}

/// The request header that carries a precondition upstream.
pub fn precondition_header(p: &Precondition) -> Option<(&'static str, String)> {
    match p {
        Precondition::None => None,
        Precondition::IfNoneMatch => Some(("if-none-match", "*".to_owned())),
        Precondition::IfMatch(e) if e == "*" => Some(("if-match", "*".to_owned())),
        Precondition::IfMatch(e) => Some(("if-match", format!("\"{e}\""))),
    }
}

/// The client's answer when the upstream says the precondition did not hold.
fn lost(e: &UpstreamError) -> S3Error {
    if e.code() == Some("ConditionalRequestConflict") || e.status() == Some(409) {
        S3ErrorCode::ConditionalRequestConflict.into()
    } else {
        S3ErrorCode::PreconditionFailed.into()
    }
}

/// A conditional write on a key with a change still queued for the upstream.
fn upstream_behind() -> S3Error {
    let mut err = S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "This node has a change to this key that the upstream, which decides conditional writes \
         across nodes, has not received yet; retry shortly.",
    );
    err.headers.push(("retry-after", "1".to_owned()));
    err
}

/// An upstream answer that means the precondition did not hold (or lost a race).
pub fn lost_precondition(e: &UpstreamError) -> bool {
    matches!(
        e.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    ) || e.status() == Some(412)
}

impl Gateway {
    /// Whether the upstream arbitrates conditional writes, probing it the first time.
    /// `Err` when it cannot be reached to find out.
    async fn upstream_enforces(&self, bucket: &str) -> Result<bool, UpstreamError> {
        let support = &self.conditional;
        if support.get() == Enforcement::Unknown {
            let _probing = support.probing.lock().await;
            if support.get() == Enforcement::Unknown {
                match self.probe_conditionals(bucket).await? {
                    Some(found) => {
                        if found == Enforcement::Ignored {
                            tracing::warn!(
                                "the upstream ignores If-None-Match and If-Match on writes: \
                                 conditional writes are checked by each node alone"
                            );
                        } else {
                            tracing::info!("the upstream enforces conditional writes");
                        }
                        support.set(found);
                    }
                    // It would not say: send the headers anyway (an upstream that refuses
                    // them refuses the write), and do not ask again for this process.
                    None => support.set(Enforcement::Enforced),
                }
            }
        }
        Ok(support.get() == Enforcement::Enforced)
    }

    /// Writes a probe object with `If-None-Match: *` twice and `If-Match` on an ETag it does
    /// not have, then deletes it. `None` when the upstream refuses the probe itself.
    async fn probe_conditionals(&self, bucket: &str) -> Result<Option<Enforcement>, UpstreamError> {
        let probe = format!("{PROBE_PREFIX}{}", crate::server::request_id());
        let (ub, uk) = self.upstream.map(bucket, &probe);
        let put = |name: &'static str, value: &str| {
            let mut r = UpstreamRequest::new(Method::PUT, &ub, Some(&uk))
                .once(true)
                .header(name, value.to_owned());
            r.sha256 = Some(crate::auth::sigv4::sha256_hex(b""));
            r
        };
        match self.upstream.send(&put("if-none-match", "*")).await {
            Ok(_) => {}
            Err(e) if e.is_outage() => {
                if e.maybe_applied() {
                    self.delete_probe(&ub, &uk).await;
                }
                return Err(e);
            }
            // An upstream that does not implement the headers says so.
            Err(e) if e.status() == Some(501) || e.code() == Some("NotImplemented") => {
                return Ok(Some(Enforcement::Ignored));
            }
            Err(e) => {
                tracing::info!(error = %e, "the upstream refused the conditional-write probe");
                return Ok(None);
            }
        }
        let mut found = Enforcement::Enforced;
        for (name, value) in [("if-none-match", "*"), ("if-match", NO_SUCH_ETAG)] {
            match self.upstream.send(&put(name, value)).await {
                // Written over although the precondition cannot hold: ignored.
                Ok(_) => found = Enforcement::Ignored,
                Err(e) if lost_precondition(&e) => {}
                Err(e) => {
                    self.delete_probe(&ub, &uk).await;
                    if e.is_outage() {
                        return Err(e);
                    }
                    tracing::info!(error = %e, header = name, "the upstream refused the probe");
                    return Ok(None);
                }
            }
        }
        self.delete_probe(&ub, &uk).await;
        Ok(Some(found))
    }

    async fn delete_probe(&self, ub: &str, uk: &str) {
        let del = UpstreamRequest::new(Method::DELETE, ub, Some(uk));
        if let Err(e) = self.upstream.send(&del).await {
            tracing::warn!(error = %e, key = uk, "could not delete the conditional-write probe");
        }
    }

    /// The answer to a conditional write that cannot be arbitrated now: the upstream is away,
    /// refuses Lifeboat's credentials, or a local error stopped the attempt.
    fn cannot_arbitrate(&self, e: &UpstreamError) -> S3Error {
        let message = match e.disposition() {
            Disposition::Local => return S3Error::internal(e),
            Disposition::Denied => {
                "The upstream decides conditional writes (If-None-Match, If-Match) across nodes \
                 and refuses this gateway's credentials now; retry later."
            }
            Disposition::Unavailable | Disposition::Refused => {
                "The upstream decides conditional writes (If-None-Match, If-Match) across nodes \
                 and cannot be reached now; retry later."
            }
        };
        tracing::info!(error = %e, "conditional write refused: the upstream cannot decide it now");
        let wait = self.upstream.config.breaker_cooldown.as_secs().max(1);
        let mut err = S3Error::with_message(S3ErrorCode::ServiceUnavailable, message);
        err.headers.push(("retry-after", wait.to_string()));
        err
    }

    /// A conditional write: `None` when it is to take the ordinary path instead (the upstream
    /// ignores conditional headers, or it is down and `offline_conditional_writes = "local"`).
    pub(super) async fn commit_conditional(
        &self,
        w: &Write<'_>,
        policy: WritePolicy,
    ) -> Option<S3Result<ObjectMeta>> {
        let local_fallback = policy != WritePolicy::Strict
            && self.upstream.config.offline_conditional_writes == OfflineConditionalWrites::Local;
        match self.upstream_enforces(w.bucket).await {
            Ok(true) => Some(self.commit_arbitrated(w, local_fallback).await),
            Ok(false) => None,
            Err(_) if local_fallback => None,
            Err(e) => Some(Err(self.cannot_arbitrate(&e))),
        }
    }

    /// This node's check, then the write upstream with its precondition, then the local
    /// commit, all under the key's lock.
    async fn commit_arbitrated(&self, w: &Write<'_>, local_fallback: bool) -> S3Result<ObjectMeta> {
        let (bucket, key) = (w.bucket, w.key);
        let store = self.store();
        let guard = self.key_lock(bucket, key).await;
        let local = match store.check_precondition(bucket, key, &w.precondition).await {
            Ok(()) => w.precondition.clone(),
            // A key this node holds no write of its own for (never cached, evicted, or only a
            // synced copy, which another node may have replaced or deleted since) and has
            // nothing queued for: the upstream alone can say.
            Err(StoreError::NoSuchKey | StoreError::PreconditionFailed)
                if self.holds_only_a_cache(bucket, key).await =>
            {
                Precondition::None
            }
            Err(e) => return Err(e.into()),
        };
        let mut meta = w.meta.clone();
        let pushed = self
            .push_object_if(bucket, key, &meta, true, Some(&w.precondition))
            .await;
        let queue = match pushed {
            Ok(()) => false,
            Err(e) if lost_precondition(&e) => {
                // The precondition held here, and this node has a change to the key queued
                // that the upstream has not had yet: the upstream judged an older state. Not a
                // verdict: the client retries once the outbox has delivered it.
                if local == w.precondition
                    && matches!(store.queued_op(bucket, key).await, Ok(Some(_)))
                {
                    drop(guard);
                    self.kick();
                    return Err(upstream_behind());
                }
                // Another writer got there first: a synced copy here is now stale.
                if e.code() != Some("ConditionalRequestConflict") {
                    self.drop_stale(bucket, key).await;
                }
                // `If-Match: <etag>` on a key the upstream does not have is `NoSuchKey`, as
                // AWS answers (some upstreams say 412; `If-Match: *` stays 412): asked only
                // when this node held nothing.
                let named = matches!(&w.precondition, Precondition::IfMatch(e) if e != "*");
                if named && local != w.precondition && self.upstream_lacks(bucket, key).await {
                    return Err(S3ErrorCode::NoSuchKey.into());
                }
                return Err(lost(&e));
            }
            Err(e) if self.disposition(&e) == Disposition::Refused => {
                if e.code() == Some("NoSuchKey") {
                    self.drop_stale(bucket, key).await;
                }
                return Err(refusal(&e));
            }
            Err(e) if local_fallback => {
                tracing::info!(bucket, key, error = %e, "upstream unavailable: conditional write checked here and queued");
                // This node's own check decides: the client's precondition, never the
                // downgraded one (a key this node does not hold fails `If-Match` here).
                if local != w.precondition {
                    return Err(store
                        .check_precondition(bucket, key, &w.precondition)
                        .await
                        .err()
                        .map_or_else(|| S3ErrorCode::PreconditionFailed.into(), Into::into));
                }
                true
            }
            Err(e) => {
                // The outcome may be unknown (no answer): the write may have landed, as a
                // timed-out write to S3 may. It is never undone here: an undo cannot tell this
                // write from another node's identical one. The copy here is only a cache.
                self.drop_stale(bucket, key).await;
                drop(guard);
                return Err(self.cannot_arbitrate(&e));
            }
        };
        meta.sync = if queue {
            SyncState::Pending
        } else {
            SyncState::Synced
        };
        let accepted = meta.clone();
        match store
            .commit(bucket, key, meta, local, queue, w.upload)
            .await
        {
            Ok((meta, _)) => {
                drop(guard);
                if queue {
                    self.kick();
                }
                Ok(meta)
            }
            Err(e) if queue => Err(e.into()),
            Err(e) => {
                // The upstream, which decides, took it: it is durable there, and this node's
                // stale copy goes, so the next read fetches it.
                tracing::warn!(bucket, key, error = %e, "the upstream took a conditional write that could not be committed here");
                self.drop_stale(bucket, key).await;
                if w.upload.is_none() {
                    store.discard(&accepted).await;
                }
                Ok(accepted)
            }
        }
    }

    /// Drops this node's synced copy of a key the upstream has a newer version of.
    async fn drop_stale(&self, bucket: &str, key: &str) {
        if let Ok(m) = self.store().object(bucket, key).await
            && m.sync == SyncState::Synced
        {
            match self.store().delete_if_synced(bucket, key, &m.etag).await {
                Ok(true) => tracing::info!(bucket, key, "cached copy dropped: another writer won"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not drop a stale cached copy"),
            }
        }
    }

    /// Whether the upstream answers 404 for the key.
    async fn upstream_lacks(&self, bucket: &str, key: &str) -> bool {
        let (ub, uk) = self.upstream.map(bucket, key);
        let head = UpstreamRequest::new(Method::HEAD, &ub, Some(&uk));
        matches!(self.upstream.send(&head).await, Err(e) if e.status() == Some(404))
    }

    /// Nothing of this key is here but, at most, a synced copy of the upstream's: no write of
    /// this node's own and nothing queued.
    async fn holds_only_a_cache(&self, bucket: &str, key: &str) -> bool {
        let store = self.store();
        let cached = match store.object(bucket, key).await {
            Err(StoreError::NoSuchKey) => true,
            Ok(m) => m.sync == SyncState::Synced,
            Err(_) => false,
        };
        cached && matches!(store.pending_op(bucket, key).await, Ok(None))
    }

    /// Queues what makes the upstream match the local state again after `etag` may have
    /// reached it without a local commit.
    pub(super) async fn reconcile(&self, bucket: &str, key: &str, etag: Option<&str>) {
        match self
            .store()
            .enqueue_reconcile(bucket, key, etag, crate::time::now_ms())
            .await
        {
            Ok(true) => self.kick(),
            Ok(false) => {}
            Err(err) => tracing::error!(error = %err, "cannot queue a reconciliation"),
        }
    }
}
