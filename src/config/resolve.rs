//! Raw configuration plus the environment into the resolved, typed settings: addresses parsed,
//! sizes in bytes, times as `Duration`s, secrets read from files, users and grants checked.
//! Every value is validated here once; nothing downstream parses a setting again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawConfig, RawSize, RawUpstream};
use super::{
    Config, ConfigError, DEV_ACCESS_KEY, DEV_SECRET_KEY, EnvLookup, LimitsConfig, ReadPolicy,
    Secret, ServerConfig, StorageConfig, UpstreamConfig, WritePolicy, invalid,
};
use crate::auth::policy::{Action, Grant, User};

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

pub(super) fn resolve(raw: RawConfig, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let address = env("LIFEBOAT_ADDRESS")
        .or(raw.server.address)
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let address = parse_address("server.address", &address)?;
    let admin_address = env("LIFEBOAT_ADMIN_ADDRESS")
        .or(raw.server.admin_address)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let admin_address = parse_address("server.admin_address", &admin_address)?;
    let region = raw.server.region.unwrap_or_else(|| "us-east-1".to_owned());
    if region.is_empty() {
        return Err(invalid("server.region", "must not be empty"));
    }
    let domains = raw
        .server
        .domains
        .unwrap_or_else(|| vec!["s3.localhost".to_owned()])
        .into_iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .collect();

    let storage = StorageConfig {
        data_dir: env("LIFEBOAT_DATA_DIR")
            .map(PathBuf::from)
            .or(raw.storage.data_dir)
            .unwrap_or_else(|| PathBuf::from("./lifeboat-data")),
        max_bytes: raw.storage.max_bytes.map_or(50 << 30, RawSize::bytes),
        min_free_bytes: raw.storage.min_free_bytes.map_or(128 << 20, RawSize::bytes),
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
        });
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
        body_idle: Duration::from_secs(l.body_idle_seconds.unwrap_or(d.body_idle.as_secs()).max(1)),
    };
    if limits.max_header_bytes < 1024 {
        return Err(invalid("limits.max_header_bytes", "must be at least 1KiB"));
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

    Ok(Config {
        server: ServerConfig {
            address,
            admin_address,
            region,
            domains,
        },
        storage,
        users,
        upstream,
        limits,
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
        revalidate_after: raw.revalidate_after.map(Duration::from_secs),
        ca_file: raw.ca_file,
        connect_timeout: ms(raw.connect_timeout_ms, 2_000),
        first_byte_timeout: ms(raw.first_byte_timeout_ms, 3_000),
        idle_timeout: ms(raw.idle_timeout_ms, 10_000),
        retries: raw.retries.unwrap_or(2),
        breaker_threshold: raw.breaker_threshold.unwrap_or(3),
        breaker_cooldown: ms(raw.breaker_cooldown_ms, 5_000),
        allow_write_override: raw.allow_write_override.unwrap_or(true),
    }))
}

fn ms(v: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(v.unwrap_or(default))
}
