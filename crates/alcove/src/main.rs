//! The `alcove` command line: `serve` runs a worker; `mount`, `status`, `load` and `free` talk
//! to a running worker's admin port; `presign` prints a presigned URL for its S3 port. It holds
//! no logic of its own beyond argument handling and printing.

mod admin_client;
mod human;
mod preload;
mod presign;
mod progress;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use alcove_worker::config::LogFormat;
use alcove_worker::preload::{Action, DEFAULT_PARALLEL, MAX_PARALLEL};
use alcove_worker::{Config, Worker};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "alcove", version, about = "An S3-compatible caching gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a worker. With no config it serves the folders of ./alcove-data as buckets on 127.0.0.1:29998.
    Serve(ServeArgs),
    /// Manage mounts (bucket → under-storage) of a running worker.
    Mount {
        #[command(subcommand)]
        action: MountAction,
    },
    /// Show a running worker's status: buckets, mounts, and the page cache per tier.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
        /// Print the worker's /status JSON as it is.
        #[arg(long)]
        json: bool,
    },
    /// Fill the page cache with every object under s3://BUCKET/PREFIX (a cached bucket).
    Load(CacheJobArgs),
    /// Drop every cached page of the objects under s3://BUCKET/PREFIX.
    Free(CacheJobArgs),
    /// Print a presigned URL (SigV4 query authentication) for s3://BUCKET/KEY.
    Presign(PresignArgs),
    /// About the configuration file.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the reference of every configuration key (Markdown; docs/configuration.md).
    Reference,
}

#[derive(clap::Args)]
struct PresignArgs {
    /// s3://BUCKET/KEY: the object the URL is for.
    uri: String,
    /// The worker's S3 endpoint [default: the --config worker's s3.addr, else http://127.0.0.1:29998]
    #[arg(long)]
    endpoint: Option<String>,
    /// How long the URL works: 30s, 15m, 1h, 7d or plain seconds; at most 7d.
    #[arg(long, default_value = "1h", value_parser = presign::parse_expires)]
    expires: std::time::Duration,
    /// The request the URL allows.
    #[arg(long, value_enum, ignore_case = true, default_value = "GET")]
    method: presign::Method,
    /// The region in the signature.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Access key to sign with [default: $AWS_ACCESS_KEY_ID, else the config's first credential]
    #[arg(long, requires = "secret_key")]
    access_key: Option<String>,
    /// Secret key to sign with [default: $AWS_SECRET_ACCESS_KEY, else the config's first credential]
    #[arg(long, requires = "access_key")]
    secret_key: Option<String>,
    /// The worker's TOML config: its first [[auth.credentials]] and its S3 address.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Where the worker's admin port is, and its token.
#[derive(clap::Args)]
struct AdminArgs {
    /// URL of the worker's admin port.
    #[arg(long, default_value = "http://127.0.0.1:30000")]
    admin: String,
    /// The worker's admin token (its admin.token), sent as a bearer token.
    #[arg(long, env = "ALCOVE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

impl AdminArgs {
    fn port(self) -> admin_client::AdminPort {
        admin_client::AdminPort { url: self.admin, token: self.admin_token }
    }
}

#[derive(clap::Args)]
struct CacheJobArgs {
    /// s3://BUCKET[/PREFIX]: a key prefix as in S3 listings (end it with / for a folder).
    uri: String,
    #[command(flatten)]
    admin: AdminArgs,
    /// Objects handled at once.
    #[arg(long, default_value_t = DEFAULT_PARALLEL as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_PARALLEL as u64))]
    parallel: u64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file (alcove.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Local root of the embedded default: its top-level folders are buckets.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Address of the S3 API (HTTP).
    #[arg(long)]
    s3_addr: Option<SocketAddr>,
    /// Address of the S3 API over HTTPS (needs [tls] cert and key) [default with a certificate: 0.0.0.0:29996]
    #[arg(long)]
    https_addr: Option<SocketAddr>,
    /// Address of the worker-to-worker port (used once workers form a cluster).
    #[arg(long)]
    peer_addr: Option<SocketAddr>,
    /// Address of the admin port (/metrics, /healthz, /readyz, mount API).
    #[arg(long)]
    admin_addr: Option<SocketAddr>,
    /// The log's format: text, or json (one object per line, access lines included) [default: the config's log.format, else text]
    #[arg(long)]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
enum MountAction {
    /// Mount an under-storage URI as a bucket.
    Add {
        /// The bucket, as /name.
        #[arg(long)]
        path: String,
        /// The under-storage, e.g. file:///srv/photos.
        #[arg(long)]
        ufs_uri: String,
        /// A backend option, KEY=VALUE (repeatable).
        #[arg(long = "option", value_parser = parse_option)]
        options: Vec<(String, String)>,
        /// Mount even where the local root has a folder of that name (its objects stay hidden
        /// until the mount is removed).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List mounts.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove a mount (its data stays in the under-storage).
    Remove {
        #[arg(long)]
        path: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

fn parse_option(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("alcove: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Mount { action } => mount(action).await,
            Command::Status { admin, json } => admin_client::status(&admin.port(), json).await,
            Command::Load(job) => cache_job(Action::Load, job).await,
            Command::Free(job) => cache_job(Action::Free, job).await,
            Command::Presign(args) => presign_url(args),
            Command::Config { action: ConfigAction::Reference } => {
                print!("{}", alcove_worker::config_reference::markdown());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("alcove: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration `alcove serve` runs with: the file, the environment, then the flags.
fn serve_config(args: &ServeArgs) -> Result<Config, String> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
    if let Some(root) = &args.root {
        config.root = root.clone();
    }
    if let Some(addr) = args.s3_addr {
        config.s3.addr = addr;
    }
    if let Some(addr) = args.peer_addr {
        config.peer.addr = addr;
    }
    if let Some(addr) = args.admin_addr {
        config.admin.addr = addr;
    }
    if let Some(addr) = args.https_addr {
        config.s3.https_addr = Some(addr);
    }
    Ok(config)
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = serve_config(&args)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off"));
    let log = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => log.json().flatten_event(true).init(),
        LogFormat::Text => log.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    // Listen for signals before the worker reports ready, so an early one is a clean shutdown
    // (or, SIGHUP, a reload rather than the end of the process).
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind| signal(kind).map_err(|e| format!("cannot listen for signals: {e}"));
    let (mut terminate, mut interrupt) = (listen(SignalKind::terminate())?, listen(SignalKind::interrupt())?);
    let mut hangup = listen(SignalKind::hangup())?;
    let mut worker = Worker::start(config).await.map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => match serve_config(&args) {
                Ok(config) => worker.reload(config),
                Err(e) => tracing::error!(error = %e, "SIGHUP: the configuration cannot be read; nothing changed"),
            },
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    worker.shutdown().await;
    Ok(())
}

fn presign_url(args: PresignArgs) -> Result<(), String> {
    let request = presign::Request {
        uri: &args.uri,
        endpoint: args.endpoint.as_deref(),
        expires: args.expires,
        method: args.method,
        region: &args.region,
        access_key: args.access_key.as_deref(),
        secret_key: args.secret_key.as_deref(),
        config: args.config.as_deref(),
    };
    let url = presign::presign(&request, |name| std::env::var(name).ok(), std::time::SystemTime::now())
        .map_err(|e| e.to_string())?;
    println!("{url}");
    Ok(())
}

async fn cache_job(action: Action, job: CacheJobArgs) -> Result<(), String> {
    preload::run(action, &job.uri, &job.admin.port(), job.parallel).await.map_err(|e| e.to_string())
}

async fn mount(action: MountAction) -> Result<(), String> {
    match action {
        MountAction::Add { path, ufs_uri, options, force, admin } => {
            admin_client::add_mount(&admin.port(), &path, &ufs_uri, options.into_iter().collect(), force).await?;
            println!("mounted {ufs_uri} at {path}");
            Ok(())
        }
        MountAction::List { admin } => admin_client::list_mounts(&admin.port()).await,
        MountAction::Remove { path, admin } => {
            admin_client::remove_mount(&admin.port(), &path).await?;
            println!("removed the mount {path}");
            Ok(())
        }
    }
}
