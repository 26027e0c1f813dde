//! OMP, the Operation Management Platform: one binary that is the server, the agent, the
//! console and the installer. The library holds every module; `main.rs` only calls [`cli`].
//! Layers (lower never imports higher): `model`, `proto` → `store`, `tls` → `audit`, `auth`,
//! `hosts` → `api`, `ui`, `agent`, `cli` → `server`. See ARCHITECTURE.md.

pub mod agent;
pub mod api;
pub mod archive;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod error;
pub mod hosts;
pub mod lifecycle;
pub mod memtrim;
pub mod metrics;
pub mod model;
pub mod proto;
pub mod remote_write;
pub mod scrape;
pub mod server;
pub mod ssh;
pub mod store;
pub mod tls;
pub mod tsdb;
pub mod ui;

/// The version the crate was compiled as. What this binary reports is [`version()`]: the
/// packaging stamp when `packaging/build.sh --version V` patched one in, else this.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version stamp: [`lifecycle::stamp::MARKER`] followed by a NUL-padded version that
/// `packaging/build.sh --version V` overwrites in the built file (all NUL: not stamped).
/// A second tarball with another version thus needs no second compilation.
#[used]
static VERSION_STAMP: [u8; lifecycle::stamp::STAMP_LEN] = lifecycle::stamp::blank();

/// The version this binary reports everywhere (CLI, agent hello, API, logs).
pub fn version() -> &'static str {
    static CACHED: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    CACHED.get_or_init(|| {
        // black_box hides the static's initial value from the optimiser, so the bytes are
        // read from the (possibly patched) file image rather than folded at compile time.
        let image: &'static [u8; lifecycle::stamp::STAMP_LEN] =
            std::hint::black_box(&VERSION_STAMP);
        lifecycle::stamp::parse(image).unwrap_or(VERSION)
    })
}

/// Sets up logging to stderr: `OMP_LOG` wins over `[log] level`.
pub fn init_logging(cfg: &config::LogConfig) {
    let filter = std::env::var("OMP_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if cfg.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
