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
    let data_dir = config.server.data_dir.clone();
    let (store, audit, auth) = open_services(&config)?;
    if let Some(b) = auth.bootstrap_admin(&data_dir, opts.admin_password.as_deref())? {
        announce_admin(&b);
    }
    let state = AppState::new(auth.clone(), audit, store, Arc::new(config));
    let app = api::router(state);

    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    if let Some(f) = &opts.listen_addr_file {
        write_atomically(f, &addr.to_string())
            .with_context(|| format!("cannot write the listen address to {}", f.display()))?;
    }
    tracing::info!(%addr, data_dir = %data_dir.display(), version = crate::VERSION, "OMP is serving.");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let janitor = tokio::spawn(session_janitor(auth, stop_rx));
    let served = api::serve(listener, app, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = janitor.await;
    tracing::info!("OMP stopped.");
    served.context("the HTTP server failed")
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
