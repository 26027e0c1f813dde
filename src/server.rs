//! The composition root of `omp serve`: opens the store, builds the services, sets up the
//! first admin, spawns background tasks under one shutdown signal and serves HTTP.
//! `run` takes the listener and the shutdown future so tests and the CLI inject them.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::api::{self, AppState};
use crate::audit::Audit;
use crate::auth::Auth;
use crate::config::Config;
use crate::hosts::Hosts;
use crate::store::Store;

/// Options of one server run beyond the config file.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Where to write the bound `host:port` once the server accepts connections.
    pub listen_addr_file: Option<PathBuf>,
    /// The admin password for the first start (OMP_ADMIN_PASSWORD).
    pub admin_password: Option<String>,
}

/// Opens the store and the services over it.
pub fn open_services(config: &Config) -> anyhow::Result<(Store, Audit, Auth)> {
    let store = Store::open(&config.server.data_dir)?;
    let audit = Audit::new(store.clone());
    let auth = Auth::new(store.clone(), audit.clone(), config.auth.clone());
    Ok((store, audit, auth))
}

/// Runs the server on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    raise_nofile_limit();
    let data_dir = config.server.data_dir.clone();
    let (store, audit, auth) = open_services(&config)?;
    if let Some(b) = auth.bootstrap_admin(&data_dir, opts.admin_password.as_deref())? {
        announce_admin(&b);
    }
    let identity = crate::tls::Identity::load_or_create(&data_dir)?;
    let acceptor = crate::tls::Acceptor::new(&identity)?;
    let hosts = Hosts::new(
        store.clone(),
        &data_dir,
        config.agent.heartbeat_secs,
        config.exec.history_jobs,
    );
    match hosts.end_orphan_terminals() {
        Ok(n) if n > 0 => tracing::warn!(
            sessions = n,
            "Terminal sessions left open by the last run were marked ended."
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "Cannot close terminal sessions of the last run."),
    }
    let pins = api::Pins {
        cert: identity.pin.clone(),
        curl: identity.curl_pin.clone(),
    };
    let (metrics, ingest_queue) = crate::metrics::Metrics::open(
        &data_dir.join("tsdb"),
        config.tsdb.options(),
        crate::tsdb::promql::QueryLimits {
            max_samples: config.tsdb.max_samples_per_query,
        },
    )
    .with_context(|| {
        format!(
            "cannot open the metrics store in {}",
            data_dir.join("tsdb").display()
        )
    })?;
    let remote = crate::remote_write::RemoteWrite::new(config.remote_write.clone());
    let metrics = metrics
        .with_remote(remote.clone())
        .with_maintenance_every(std::time::Duration::from_secs(config.tsdb.flush_secs));
    let hosts = hosts.with_metrics(metrics.clone(), config.agent.metrics_secs);
    let scraper =
        crate::scrape::Scraper::new(store.clone(), metrics.clone(), config.scrape.clone())
            .with_hosts(hosts.clone());
    let local_agent = config.server.local_agent;
    let services = api::Services {
        auth: auth.clone(),
        audit,
        hosts: hosts.clone(),
        metrics: metrics.clone(),
        scraper: scraper.clone(),
        store,
    };
    let state = AppState::new(services, pins, Arc::new(config));
    let app = api::router(state);

    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    if let Some(f) = &opts.listen_addr_file {
        write_atomically(f, &addr.to_string())
            .with_context(|| format!("cannot write the listen address to {}", f.display()))?;
    }
    tracing::info!(%addr, data_dir = %data_dir.display(), version = crate::version(), "OMP is serving.");

    // Every background task is owned here and awaited after the server stops.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(session_janitor(auth, stop_rx.clone()));
    tasks.spawn(hosts_ticker(hosts.clone(), stop_rx.clone()));
    tasks.spawn(metrics.clone().run_ingest(ingest_queue, stop_rx.clone()));
    tasks.spawn(metrics.run_maintenance(stop_rx.clone()));
    tasks.spawn(scraper.run(stop_rx.clone()));
    tasks.spawn(remote.run(stop_rx.clone()));
    tasks.spawn(release_startup_pages(stop_rx.clone()));
    if local_agent {
        tasks.spawn(run_local_agent(
            hosts,
            identity.pin.clone(),
            data_dir.join("local-agent"),
            addr,
            stop_rx,
        ));
    }
    let served = api::serve(listener, app, acceptor, shutdown).await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    tracing::info!("OMP stopped.");
    served.context("the HTTP server failed")
}

/// Marks silent agents offline and times out runs nobody answers: every second while
/// there is something to watch, every 5 s otherwise (their limits are longer than that).
async fn hosts_ticker(hosts: Hosts, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let secs = if hosts.needs_ticks() { 1 } else { 5 };
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(secs)) => hosts.tick().await,
            _ = stop.changed() => return,
        }
    }
}

/// The embedded agent: the server's own host, enrolled and connected like any other.
async fn run_local_agent(
    hosts: Hosts,
    pin: String,
    dir: PathBuf,
    addr: std::net::SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v) if v.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(v) if v.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(v) => format!("[{v}]"),
        ip => ip.to_string(),
    };
    let enrolled = dir.join("agent.json").exists();
    let token = if enrolled {
        None
    } else {
        match hosts.local_enroll_secret() {
            Ok(secret) => Some(crate::proto::EnrollToken { pin, secret }.encode()),
            Err(e) => {
                tracing::error!(error = %e, "Cannot enroll the local agent.");
                return;
            }
        }
    };
    let opts = crate::agent::AgentOptions {
        server: format!("https://{ip}:{}", addr.port()),
        enroll_token: token,
        data_dir: dir,
        enroll_only: false,
    };
    let stopped = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = crate::agent::run(opts, stopped).await {
        tracing::error!(error = %format!("{e:#}"), "The local agent stopped.");
    }
}

/// Raises this process's open-file limit to its hard limit: every agent holds a socket,
/// and the usual soft limit of 1024 would cap a site at about a thousand hosts.
pub fn raise_nofile_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

/// Purges expired sessions every ten minutes until told to stop.
async fn session_janitor(auth: Auth, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
            _ = stop.changed() => return,
        }
        let a = auth.clone();
        match tokio::task::spawn_blocking(move || a.purge_expired_sessions()).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(sessions = n, "Expired sessions purged."),
            Ok(Err(e)) => tracing::warn!(error = %e, "Purging expired sessions failed."),
            _ => {}
        }
    }
}

/// Releases the binary's start-up pages once start-up is over (see `memtrim`), unless the
/// server stops first.
async fn release_startup_pages(mut stop: tokio::sync::watch::Receiver<bool>) {
    tokio::select! {
        _ = crate::memtrim::release_after_start() => {}
        _ = stop.changed() => {}
    }
}

/// Prints the generated admin password once, on stdout and never in the log.
fn announce_admin(b: &crate::auth::Bootstrap) {
    match (&b.generated, &b.file) {
        (Some(pw), Some(file)) => {
            println!("================================================================");
            println!(" OMP first start: the administrator account was created.");
            println!("   username: admin");
            println!("   password: {pw}");
            println!(" It is also in {} (mode 0600).", file.display());
            println!(" You must change it at the first login. This is shown only once.");
            println!("================================================================");
        }
        _ => println!(
            "OMP first start: administrator 'admin' created with the password from OMP_ADMIN_PASSWORD."
        ),
    }
}

/// Writes `content` to `path` through a temporary file and a rename, so readers never see
/// a half-written file.
pub fn write_atomically(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("Shutdown requested.");
}
