//! The `lifeboat` command: serve S3, check a configuration file, drive the running server's
//! admin API, or load an S3 endpoint (`bench`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lifeboat::config::{Config, process_env};

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "An S3 gateway that keeps serving when S3 does not"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the S3 API (the default).
    Serve {
        /// TOML configuration file; environment variables apply on top.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// What the running server is doing: outbox, upstream circuit, local use (admin API).
    Status {
        /// TOML configuration file (for the admin address, token and an admin user).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The admin API's URL (default: http:// + server.admin_address, https:// with TLS).
        #[arg(long)]
        admin: Option<String>,
        /// PEM certificates to trust for an https admin URL, besides the system roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Print the raw JSON document.
        #[arg(long)]
        json: bool,
        /// Add object counts per bucket.
        #[arg(long)]
        buckets: bool,
    },
    /// Push the running server's local-only objects (written before gateway mode) upstream,
    /// and follow the replication to the end (admin API); resumable after a crash or a stop.
    Sync {
        /// Only this bucket.
        #[arg(long)]
        bucket: Option<String>,
        /// Only keys under this prefix (with --bucket).
        #[arg(long, requires = "bucket")]
        prefix: Option<String>,
        /// Upload at most this many bytes per second, e.g. 20MiB/s (default:
        /// upstream.replication_rate).
        #[arg(long)]
        rate: Option<String>,
        /// Count what would be pushed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// TOML configuration file (for the admin address, token and an admin user).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The admin API's URL (default: http:// + server.admin_address, https:// with TLS).
        #[arg(long)]
        admin: Option<String>,
        /// PEM certificates to trust for an https admin URL, besides the system roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Fetch every object under s3://BUCKET/PREFIX from the upstream into the running server's
    /// cache (admin API); resumable: objects already cached are skipped.
    Warm {
        /// s3://bucket/prefix
        target: String,
        /// Pin the prefix first, so what is fetched is never evicted.
        #[arg(long)]
        pin: bool,
        /// TOML configuration file (for the admin address, token and an admin user).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The admin API's URL (default: http:// + server.admin_address, https:// with TLS).
        #[arg(long)]
        admin: Option<String>,
        /// PEM certificates to trust for an https admin URL, besides the system roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Load an S3 endpoint (Lifeboat or any other) and report ops/s, MiB/s, latency
    /// percentiles and errors by kind.
    Bench(lifeboat::bench::BenchArgs),
    /// Outbox entries the upstream refused for good (the store of a stopped server, else the
    /// running server's admin API).
    DeadLetters {
        /// TOML configuration file (for the data directory, and the admin API's address,
        /// token and an admin user while the server runs).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        /// Only the dead letters of this bucket.
        #[arg(long, global = true)]
        bucket: Option<String>,
        /// Only keys under this prefix (with --bucket).
        #[arg(long, global = true)]
        prefix: Option<String>,
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// List them: sequence number, time, operation, the upstream's reason.
    List,
    /// Queue them for replay again (all, or the numbers given).
    Retry { seq: Vec<u64> },
    /// Forget them, keeping the local objects (all with --all, or the numbers given, or
    /// --bucket/--prefix).
    Drop {
        seq: Vec<u64>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and print the resolved settings, secrets redacted.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Config {
            command: ConfigCommand::Check { file },
        } => match Config::load(Some(&file), &process_env) {
            Ok(c) => {
                print!("{}", c.describe());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Serve { config } => serve(config),
        Command::Status {
            config,
            admin,
            ca_file,
            json,
            buckets,
        } => status(config, admin, ca_file, json, buckets),
        Command::Sync {
            bucket,
            prefix,
            rate,
            dry_run,
            config,
            admin,
            ca_file,
        } => sync(
            SyncCommand {
                bucket,
                prefix,
                rate,
                dry_run,
            },
            config,
            admin,
            ca_file,
        ),
        Command::Warm {
            target,
            pin,
            config,
            admin,
            ca_file,
        } => warm(&target, pin, config, admin, ca_file),
        Command::DeadLetters {
            config,
            bucket,
            prefix,
            command,
        } => dead_letters(config, bucket, prefix, command),
        Command::Bench(args) => bench(&args),
    }
}

/// The summary on stdout; exit 1 when a request failed, 2 when the run could not start.
fn bench(args: &lifeboat::bench::BenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lifeboat: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(lifeboat::bench::run(args)) {
        Ok(summary) => {
            match args.json {
                true => println!("{}", summary.json()),
                false => print!("{}", summary.text()),
            }
            match summary.errors {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            eprintln!("lifeboat bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn dead_letters(
    path: Option<PathBuf>,
    bucket: Option<String>,
    prefix: Option<String>,
    command: DeadLettersCommand,
) -> ExitCode {
    use lifeboat::dead_letters::{Action, Selection, run};
    let select = |seq: Vec<u64>, all: bool| Selection {
        ids: (!seq.is_empty()).then_some(seq),
        bucket: bucket.clone(),
        prefix: prefix.clone(),
        all,
    };
    let action = match command {
        DeadLettersCommand::List => Action::List(select(Vec::new(), false)),
        DeadLettersCommand::Retry { seq } => Action::Retry(select(seq, false)),
        DeadLettersCommand::Drop { seq, all } => Action::Drop(select(seq, all)),
    };
    let Some((config, runtime)) = prepare(path, tokio::runtime::Builder::new_current_thread())
    else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(run(&config, action)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::FAILURE
        }
    }
}

struct SyncCommand {
    bucket: Option<String>,
    prefix: Option<String>,
    rate: Option<String>,
    dry_run: bool,
}

fn sync(
    cmd: SyncCommand,
    path: Option<PathBuf>,
    admin: Option<String>,
    ca_file: Option<PathBuf>,
) -> ExitCode {
    use lifeboat::admin::{cli, sync_cli};
    let rate = match cmd.rate.as_deref().map(sync_cli::parse_rate).transpose() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lifeboat: --rate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some((config, runtime)) = prepare(path, tokio::runtime::Builder::new_current_thread())
    else {
        return ExitCode::FAILURE;
    };
    let base = cli::base_url(&config, admin.as_deref());
    let args = sync_cli::SyncArgs {
        bucket: cmd.bucket.as_deref(),
        prefix: cmd.prefix.as_deref(),
        rate,
        dry_run: cmd.dry_run,
    };
    job_outcome(runtime.block_on(sync_cli::run(&config, &base, &args, ca_file.as_deref())))
}

fn warm(
    target: &str,
    pin: bool,
    path: Option<PathBuf>,
    admin: Option<String>,
    ca_file: Option<PathBuf>,
) -> ExitCode {
    use lifeboat::admin::{cli, warm_cli};
    let Some((bucket, prefix)) = warm_cli::parse_target(target) else {
        eprintln!("lifeboat: {target:?} is not s3://bucket/prefix");
        return ExitCode::FAILURE;
    };
    let Some((config, runtime)) = prepare(path, tokio::runtime::Builder::new_current_thread())
    else {
        return ExitCode::FAILURE;
    };
    let base = cli::base_url(&config, admin.as_deref());
    job_outcome(runtime.block_on(warm_cli::run(
        &config,
        &base,
        &bucket,
        &prefix,
        pin,
        ca_file.as_deref(),
    )))
}

/// A followed admin job's summary on stdout; exit 1 when it did not complete, or failed.
fn job_outcome(result: Result<(String, bool), lifeboat::admin::cli::CliError>) -> ExitCode {
    match result {
        Ok((summary, complete)) => {
            println!("{summary}");
            if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn status(
    path: Option<PathBuf>,
    admin: Option<String>,
    ca_file: Option<PathBuf>,
    json: bool,
    buckets: bool,
) -> ExitCode {
    use lifeboat::admin::cli;
    let Some((config, runtime)) = prepare(path, tokio::runtime::Builder::new_current_thread())
    else {
        return ExitCode::FAILURE;
    };
    let base = cli::base_url(&config, admin.as_deref());
    let path = if buckets {
        "/storage/status?detail=buckets"
    } else {
        "/storage/status"
    };
    match runtime.block_on(cli::get_json(&config, &base, path, ca_file.as_deref())) {
        Ok(doc) if json => {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(doc) => {
            print!("{}", cli::table(&doc));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration and builds the runtime a command runs on; says why on stderr when
/// either fails.
fn prepare(
    path: Option<PathBuf>,
    mut builder: tokio::runtime::Builder,
) -> Option<(Config, tokio::runtime::Runtime)> {
    let config = Config::load(path.as_deref(), &process_env)
        .map_err(|e| eprintln!("lifeboat: {e}"))
        .ok()?;
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("lifeboat: cannot start the runtime: {e}"))
        .ok()?;
    Some((config, runtime))
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    let Some((config, runtime)) = prepare(path, tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    init_logging(config.server.access_log);
    let result = runtime.block_on(lifeboat::server::run(config));
    // Tasks still running (a request past the grace period) are dropped here: an upload cut
    // off removes its temp file, and the store closes with its last reference.
    runtime.shutdown_timeout(RUNTIME_STOP_WAIT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long blocking work (a blob being streamed) gets once the server has stopped.
const RUNTIME_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Diagnostics (`LIFEBOAT_LOG`, default `info`) and the access log (`server.access_log`) both
/// go to stderr, each line in its own format; the diagnostics never carry the access target.
fn init_logging(access: lifeboat::config::AccessLogFormat) {
    use lifeboat::server::access::{AccessLayer, TARGET};
    use tracing_subscriber::filter::{EnvFilter, filter_fn};
    use tracing_subscriber::prelude::*;
    let mut diagnostics =
        EnvFilter::try_from_env("LIFEBOAT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if let Ok(off) = format!("{TARGET}=off").parse() {
        diagnostics = diagnostics.add_directive(off);
    }
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(diagnostics),
        )
        .with(AccessLayer::new(access).with_filter(filter_fn(|m| m.target() == TARGET)))
        .init();
}
