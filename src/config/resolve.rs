//! Raw configuration plus the environment into the resolved, typed settings: addresses parsed,
//! sizes in bytes, times as `Duration`s, secrets read from files, users and grants checked.
//! Every value is validated here once; nothing downstream parses a setting again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawConfig, RawPresign, RawRevalidate, RawServer, RawSize, RawUpstream};
use super::{
    Config, ConfigError, DEFAULT_UPLOAD_TYPES, DEV_ACCESS_KEY, DEV_SECRET_KEY, EncryptionKey,
    EnvLookup, LimitsConfig, OfflineConditionalWrites, PresignConfig, PresignTarget, ReadPolicy,
    Secret, ServerConfig, StorageConfig, UpstreamConfig, WritePolicy, invalid,
};
use crate::auth::policy::{Action, Grant, User};

/// `upstream.revalidate_after` when unset: a cached copy is checked with a conditional request
/// (a 304 costs no body) once it is a minute old, so another writer's change upstream is seen
/// within a minute while a hot object still costs at most one small request a minute.
const DEFAULT_REVALIDATE_AFTER: Duration = Duration::from_secs(60);

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(invalid(
            key,
            format!("expected true or false, got {other:?}"),
        )),
    }
}

fn read_secret(
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(key, "set secret_key or secret_key_file, not both")),
        (Some(s), None) => Ok(Some(Secret::new(s))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            Ok(Some(Secret::new(text.trim_end_matches(['\n', '\r']))))
        }
        (None, None) => Ok(None),
    }
}

fn parse_address(key: &str, addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.parse::<SocketAddr>()
        .map_err(|_| invalid(key, format!("{addr:?} is not an IP:port address")))
}

pub(super) fn resolve(mut raw: RawConfig, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let address = env("LIFEBOAT_ADDRESS")
        .or(raw.server.address.take())
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let address = parse_address("server.address", &address)?;
    let admin_address = env("LIFEBOAT_ADMIN_ADDRESS")
        .or(raw.server.admin_address.take())
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let admin_address = parse_address("server.admin_address", &admin_address)?;
    let region = raw.server.region.take();
    if region.as_deref().is_some_and(str::is_empty) {
        return Err(invalid("server.region", "must not be empty"));
    }
    let domains = raw
        .server
        .domains
        .take()
        .unwrap_or_else(|| vec!["s3.localhost".to_owned()])
        .into_iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let admin = resolve_admin(&mut raw.server)?;
    let network = super::network::resolve_network(&mut raw.server)?;
    let connections = super::network::resolve_connection_limits(&raw.limits)?;
    let buckets = super::network::resolve_buckets(std::mem::take(&mut raw.buckets))?;
    let cluster =
        super::network::resolve_cluster(std::mem::take(&mut raw.cluster), admin.token.is_some())?;

    let max_bytes = raw.storage.max_bytes.map_or(50 << 30, RawSize::bytes);
    let evict_to = match &raw.storage.evict_to {
        None => max_bytes / 10 * 9,
        Some(e) => e
            .bytes(max_bytes)
            .map_err(|m| invalid("storage.evict_to", m))?,
    };
    if evict_to > max_bytes {
        return Err(invalid(
            "storage.evict_to",
            format!("{evict_to} bytes is more than storage.max_bytes ({max_bytes})"),
        ));
    }
    let storage = StorageConfig {
        data_dir: env("LIFEBOAT_DATA_DIR")
            .map(PathBuf::from)
            .or(raw.storage.data_dir)
            .unwrap_or_else(|| PathBuf::from("./lifeboat-data")),
        max_bytes,
        evict_to,
        min_free_bytes: raw.storage.min_free_bytes.map_or(128 << 20, RawSize::bytes),
        encryption_key: match &raw.storage.encryption_key_file {
            Some(path) => Some(read_encryption_key(path)?),
            None => None,
        },
        encryption_key_file: raw.storage.encryption_key_file,
    };

    let mut users = Vec::new();
    for (i, u) in raw.users.into_iter().enumerate() {
        let key = format!("users[{i}]");
        if u.access_key.is_empty() {
            return Err(invalid(&format!("{key}.access_key"), "must not be empty"));
        }
        let secret = read_secret(
            &format!("{key}.secret_key"),
            u.secret_key,
            u.secret_key_file,
        )?
        .ok_or_else(|| invalid(&format!("{key}.secret_key"), "missing"))?;
        let explicit = u.grants.is_some();
        let grants = match u.grants {
            None => vec![Grant::all()],
            Some(gs) => gs
                .into_iter()
                .map(|g| {
                    let actions = g
                        .actions
                        .iter()
                        .map(|a| {
                            Action::parse(a).ok_or_else(|| {
                                invalid(&format!("{key}.grants"), format!("unknown action {a:?}"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Grant {
                        bucket: g.bucket,
                        prefix: g.prefix,
                        actions,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?,
        };
        if users.iter().any(|x: &User| x.access_key == u.access_key) {
            return Err(invalid(
                &format!("{key}.access_key"),
                "duplicate access key",
            ));
        }
        users.push(User {
            access_key: u.access_key,
            secret_key: secret,
            admin: u.admin,
            grants,
            own_buckets: !explicit,
        });
    }
    match (env("LIFEBOAT_ACCESS_KEY"), env("LIFEBOAT_SECRET_KEY")) {
        (Some(ak), Some(sk)) => {
            users.retain(|u| u.access_key != ak);
            users.push(User {
                access_key: ak,
                secret_key: Secret::new(sk),
                admin: true,
                grants: vec![Grant::all()],
                own_buckets: true,
            });
        }
        (None, None) => {}
        _ => {
            return Err(invalid(
                "LIFEBOAT_ACCESS_KEY",
                "set both LIFEBOAT_ACCESS_KEY and LIFEBOAT_SECRET_KEY, or neither",
            ));
        }
    }
    let dev_credentials = users.is_empty();
    if dev_credentials {
        users.push(User {
            access_key: DEV_ACCESS_KEY.to_owned(),
            secret_key: Secret::new(DEV_SECRET_KEY),
            admin: true,
            grants: vec![Grant::all()],
            own_buckets: false,
        });
    }
    // Without grants a user may use the buckets it created; alone, it may use everything.
    if users.len() == 1 {
        users[0].own_buckets = false;
    }

    let upstream = resolve_upstream(raw.upstream, env)?;

    let l = raw.limits;
    let d = LimitsConfig::default();
    let limits = LimitsConfig {
        max_object_size: l.max_object_size.map_or(d.max_object_size, RawSize::bytes),
        max_key_length: l.max_key_length.unwrap_or(d.max_key_length),
        max_header_bytes: l
            .max_header_bytes
            .map_or(d.max_header_bytes, |s| s.bytes() as usize),
        max_xml_body: l
            .max_xml_body
            .map_or(d.max_xml_body, |s| s.bytes() as usize),
        max_metadata_bytes: l
            .max_metadata_bytes
            .map_or(d.max_metadata_bytes, |s| s.bytes() as usize),
        clock_skew: l
            .clock_skew_seconds
            .map_or(d.clock_skew, Duration::from_secs),
        min_part_size: l.min_part_size.map_or(d.min_part_size, RawSize::bytes),
        max_parts: l.max_parts.unwrap_or(d.max_parts).clamp(1, 10_000),
        max_delete_keys: l.max_delete_keys.unwrap_or(d.max_delete_keys).max(1),
        abandoned_upload: l
            .abandoned_upload_seconds
            .map_or(d.abandoned_upload, Duration::from_secs),
        first_byte_timeout: Duration::from_secs(
            l.first_byte_timeout_seconds
                .unwrap_or(d.first_byte_timeout.as_secs())
                .max(1),
        ),
        header_timeout: Duration::from_secs(
            l.header_timeout_seconds
                .unwrap_or(d.header_timeout.as_secs())
                .max(1),
        ),
        completed_upload: l
            .completed_upload_seconds
            .map_or(d.completed_upload, Duration::from_secs)
            .max(Duration::from_secs(1)),
        body_idle: Duration::from_secs(l.body_idle_seconds.unwrap_or(d.body_idle.as_secs()).max(1)),
        idle_timeout: connections.idle_timeout,
        max_connections: connections.max_connections,
        max_concurrent_streams: connections.max_concurrent_streams,
        requests_per_second: connections.requests_per_second,
        request_burst: connections.request_burst,
    };
    if limits.max_header_bytes < 1024 {
        return Err(invalid("limits.max_header_bytes", "must be at least 1KiB"));
    }
    // hyper refuses a request line over 64 KiB with a bare 414; Lifeboat's own check (in S3
    // XML) must answer first.
    if limits.max_header_bytes > 63 << 10 {
        return Err(invalid("limits.max_header_bytes", "must be at most 63KiB"));
    }
    if limits.abandoned_upload.is_zero() {
        return Err(invalid(
            "limits.abandoned_upload_seconds",
            "must be at least 1",
        ));
    }
    if limits.clock_skew > Duration::from_secs(7 * 24 * 3600) {
        return Err(invalid(
            "limits.clock_skew_seconds",
            "must be at most a week (604800)",
        ));
    }

    let presign = resolve_presign(raw.presign)?;
    if presign.target == PresignTarget::Upstream && upstream.is_none() {
        return Err(invalid(
            "presign.target",
            "\"upstream\" needs an [upstream] (gateway mode)",
        ));
    }
    Ok(Config {
        server: ServerConfig {
            address,
            admin_address,
            region,
            domains,
            public_url: admin.public_url,
            admin_token_file: admin.token_file,
            admin_token: admin.token,
            metrics_auth: admin.metrics_auth,
            cors_origins: admin.cors_origins,
            sigv2: raw.server.sigv2.unwrap_or(true),
            tls_cert: network.tls_cert,
            tls_key: network.tls_key,
            shutdown_grace: network.shutdown_grace,
            trusted_proxies: network.trusted_proxies,
            access_log: network.access_log,
            node_name: network.node_name,
        },
        storage,
        users,
        upstream,
        presign,
        limits,
        buckets,
        cluster,
        dev_credentials,
    })
}

fn resolve_upstream(
    raw: Option<RawUpstream>,
    env: EnvLookup<'_>,
) -> Result<Option<UpstreamConfig>, ConfigError> {
    let enabled = match env("USE_S3_STORAGE") {
        Some(v) => parse_bool("USE_S3_STORAGE", &v)?,
        None => raw.is_some(),
    };
    if !enabled {
        return Ok(None);
    }
    let raw = raw.unwrap_or_default();
    let endpoint = env("S3_ENDPOINT_URL")
        .or(raw.endpoint)
        .ok_or_else(|| invalid("upstream.endpoint", "missing (or set S3_ENDPOINT_URL)"))?;
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(invalid(
            "upstream.endpoint",
            "must start with http:// or https://",
        ));
    }
    let access_key = env("AWS_ACCESS_KEY_ID")
        .or(raw.access_key)
        .ok_or_else(|| invalid("upstream.access_key", "missing (or set AWS_ACCESS_KEY_ID)"))?;
    let secret_key = match env("AWS_SECRET_ACCESS_KEY") {
        Some(s) => Secret::new(s),
        None => read_secret("upstream.secret_key", raw.secret_key, raw.secret_key_file)?
            .ok_or_else(|| {
                invalid(
                    "upstream.secret_key",
                    "missing (or set AWS_SECRET_ACCESS_KEY)",
                )
            })?,
    };
    let write = match raw.write.as_deref().unwrap_or("through") {
        "through" => WritePolicy::Through,
        "back" => WritePolicy::Back,
        "strict" => WritePolicy::Strict,
        other => {
            return Err(invalid(
                "upstream.write",
                format!("{other:?}: expected through, back or strict"),
            ));
        }
    };
    let read = match raw.read.as_deref().unwrap_or("local-first") {
        "local-first" => ReadPolicy::LocalFirst,
        "upstream-first" => ReadPolicy::UpstreamFirst,
        other => {
            return Err(invalid(
                "upstream.read",
                format!("{other:?}: expected local-first or upstream-first"),
            ));
        }
    };
    let offline_conditional_writes = match raw.offline_conditional_writes.as_deref() {
        None | Some("refuse") => OfflineConditionalWrites::Refuse,
        Some("local") => OfflineConditionalWrites::Local,
        Some(other) => {
            return Err(invalid(
                "upstream.offline_conditional_writes",
                format!("{other:?}: expected \"refuse\" or \"local\""),
            ));
        }
    };
    let sse = raw.sse.filter(|s| !s.is_empty());
    if let Some(s) = &sse
        && s != "AES256"
    {
        return Err(invalid(
            "upstream.sse",
            format!("{s:?}: only \"AES256\" is supported"),
        ));
    }
    Ok(Some(UpstreamConfig {
        endpoint,
        region: env("S3_REGION")
            .or(raw.region)
            .unwrap_or_else(|| "us-east-1".to_owned()),
        access_key,
        secret_key,
        path_style: raw.path_style.unwrap_or(true),
        bucket: env("S3_BUCKET_NAME")
            .or(raw.bucket)
            .filter(|b| !b.is_empty()),
        write,
        read,
        auto_create_buckets: raw.auto_create_buckets.unwrap_or(true),
        sse,
        revalidate_after: raw
            .revalidate_after
            .map_or(Some(DEFAULT_REVALIDATE_AFTER), RawRevalidate::after),
        ca_file: raw.ca_file,
        connect_timeout: ms(raw.connect_timeout_ms, 2_000),
        first_byte_timeout: ms(raw.first_byte_timeout_ms, 3_000),
        idle_timeout: ms(raw.idle_timeout_ms, 10_000),
        retries: raw.retries.unwrap_or(2),
        breaker_threshold: raw.breaker_threshold.unwrap_or(3),
        breaker_cooldown: ms(raw.breaker_cooldown_ms, 5_000),
        allow_write_override: raw.allow_write_override.unwrap_or(true),
        replication_rate: raw.replication_rate.map_or(0, RawSize::bytes),
        replication_concurrency: raw.replication_concurrency.unwrap_or(4).clamp(1, 64),
        offline_conditional_writes,
    }))
}

fn ms(v: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(v.unwrap_or(default))
}

/// The admin and browser-facing parts of `[server]`.
struct AdminSettings {
    public_url: Option<String>,
    token_file: Option<PathBuf>,
    token: Option<Secret>,
    metrics_auth: bool,
    cors_origins: Vec<String>,
}

fn resolve_admin(raw: &mut RawServer) -> Result<AdminSettings, ConfigError> {
    let public_url = raw
        .public_url
        .take()
        .map(|u| u.trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty());
    if let Some(u) = &public_url {
        let rest = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"))
            .ok_or_else(|| invalid("server.public_url", "must start with http:// or https://"))?;
        if rest.is_empty() || rest.contains(['/', '?', '#']) {
            return Err(invalid(
                "server.public_url",
                "must be scheme://host[:port] with no path: signatures cover the path, so a \
                 proxy in front must pass it unchanged",
            ));
        }
    }
    let token_file = raw.admin_token_file.take();
    let token = match &token_file {
        Some(path) => Some(read_token(path)?),
        None => None,
    };
    let cors_origins = raw.cors_origins.take().unwrap_or_default();
    if let Some(o) = cors_origins.iter().find(|o| o.matches('*').count() > 1) {
        return Err(invalid(
            "server.cors_origins",
            format!("{o:?}: at most one * wildcard"),
        ));
    }
    Ok(AdminSettings {
        public_url,
        token_file,
        token,
        metrics_auth: raw.metrics_auth.unwrap_or(false),
        cors_origins,
    })
}

/// Refuses a secret's file that group or others may read: it must be mode 0600 (or stricter).
fn check_owner_only(key: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(invalid(
                key,
                format!(
                    "{} has mode {mode:04o}; it holds a secret, so it must not be readable by \
                     group or others (chmod 600)",
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// Reads the admin bearer token; the file must be readable by its owner only.
fn read_token(path: &std::path::Path) -> Result<Secret, ConfigError> {
    let key = "server.admin_token_file";
    check_owner_only(key, path)?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    if token.len() < 16 {
        return Err(invalid(
            key,
            format!(
                "{}: the token must be at least 16 characters",
                path.display()
            ),
        ));
    }
    Ok(Secret::new(token))
}

/// Reads the key blobs are sealed with: exactly 32 raw bytes, readable by its owner only.
fn read_encryption_key(path: &std::path::Path) -> Result<EncryptionKey, ConfigError> {
    let key = "storage.encryption_key_file";
    check_owner_only(key, path)?;
    let mut bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let found = EncryptionKey::from_bytes(&bytes);
    let len = bytes.len();
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&bytes);
    found.ok_or_else(|| {
        invalid(
            key,
            format!(
                "{} holds {} bytes; it must hold exactly {} random bytes, not text \
                 (head -c 32 /dev/urandom > FILE; chmod 600 FILE)",
                path.display(),
                len,
                EncryptionKey::LEN
            ),
        )
    })
}

fn resolve_presign(raw: RawPresign) -> Result<PresignConfig, ConfigError> {
    let allowed_content_types = raw.allowed_content_types.unwrap_or_else(|| {
        DEFAULT_UPLOAD_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    });
    let allowed_content_types: Vec<String> = allowed_content_types
        .into_iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    if let Some(t) = allowed_content_types
        .iter()
        .find(|t| t.is_empty() || (t.contains('*') && !(t.ends_with("/*") || *t == "*/*")))
    {
        return Err(invalid(
            "presign.allowed_content_types",
            format!("{t:?}: expected type/subtype, type/* or */*"),
        ));
    }
    let max_expires = Duration::from_secs(raw.max_expires.unwrap_or(604_800));
    if max_expires.is_zero() || max_expires.as_secs() > crate::auth::MAX_PRESIGNED_EXPIRES {
        return Err(invalid(
            "presign.max_expires",
            "must be between 1 and 604800 seconds (7 days, the SigV4 limit)",
        ));
    }
    let default_expires = Duration::from_secs(raw.default_expires.unwrap_or(3600));
    if default_expires.is_zero() || default_expires > max_expires {
        return Err(invalid(
            "presign.default_expires",
            "must be at least 1 and at most presign.max_expires",
        ));
    }
    let target = match raw.target.as_deref().unwrap_or("lifeboat") {
        "lifeboat" => PresignTarget::Lifeboat,
        "upstream" => PresignTarget::Upstream,
        other => {
            return Err(invalid(
                "presign.target",
                format!("{other:?}: expected lifeboat or upstream"),
            ));
        }
    };
    let prefix = crate::admin::filename::check_prefix(raw.prefix.as_deref().unwrap_or("uploads"))
        .map_err(|e| invalid("presign.prefix", e))?;
    Ok(PresignConfig {
        allowed_content_types,
        max_size: raw.max_size.map_or(100_000_000, RawSize::bytes),
        default_expires,
        max_expires,
        bucket: raw.bucket.filter(|b| !b.is_empty()),
        prefix,
        target,
        create_bucket: raw.create_bucket.unwrap_or(false),
    })
}
