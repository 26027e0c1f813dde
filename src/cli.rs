//! The `omp` command line (clap): serve, user, token, audit, config, store, version and
//! completions. Each verb is a thin shell over the services; errors reach `main` as one line.

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::audit;
use crate::auth::{NewUser, UserPatch, password};
use crate::config::Config;
use crate::model::User;

/// OMP: operations management for small sites, in one binary.
#[derive(Debug, Parser)]
#[command(name = "omp", version = crate::version(), propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: web UI, API and store
    Serve(ServeArgs),
    /// Run the agent on a managed host
    Agent(AgentArgs),
    /// Manage users directly in the store (with the server stopped)
    #[command(subcommand)]
    User(UserCmd),
    /// Manage API tokens directly in the store (with the server stopped)
    #[command(subcommand)]
    Token(TokenCmd),
    /// Verify or export the audit log
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Check configuration files
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The metrics store: backfill samples
    #[command(subcommand)]
    Tsdb(TsdbCmd),
    /// Logical dump and load of the whole store
    #[command(subcommand)]
    Store(StoreCmd),
    /// Measure this build (see the README's Performance section)
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Install from the unpacked tarball (run omp-VERSION/bin/omp install)
    Install(InstallArgs),
    /// Remove an installation (the data stays unless --purge)
    Uninstall {
        #[arg(long, value_name = "P", default_value = crate::lifecycle::DEFAULT_PREFIX)]
        prefix: PathBuf,
        /// Also delete the data dir and the upgrade backups
        #[arg(long)]
        purge: bool,
        /// Confirm
        #[arg(long)]
        yes: bool,
    },
    /// Control the installed services: omp ctl [all|server|agent] [status|start|stop|restart]
    Ctl {
        /// all, server or agent (default all)
        which: Option<String>,
        /// status, start, stop or restart (default status)
        action: Option<String>,
        #[arg(long, value_name = "P", default_value = crate::lifecycle::DEFAULT_PREFIX)]
        prefix: PathBuf,
    },
    /// Upgrade an installation from a newer tarball (resumable, rolls back on failure)
    Upgrade {
        tarball: PathBuf,
        /// Resume an interrupted upgrade at this step (verify, precheck, backup, stop,
        /// snapshot, swap, migrate, start, health, post)
        #[arg(long, value_name = "STEP")]
        from: Option<String>,
        #[arg(long, value_name = "P", default_value = crate::lifecycle::DEFAULT_PREFIX)]
        prefix: PathBuf,
        /// Public key (from omp keygen) the tarball's SHA256SUMS.sig must match; default
        /// P/etc/release-key.pub when present
        #[arg(long, value_name = "FILE")]
        trust_key: Option<PathBuf>,
    },
    /// Return to the version before the last upgrade (and the store as it was then)
    Rollback {
        #[arg(long, value_name = "P", default_value = crate::lifecycle::DEFAULT_PREFIX)]
        prefix: PathBuf,
    },
    /// Create an Ed25519 site key pair for signing release tarballs (FILE and FILE.pub)
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign a file (a tarball's SHA256SUMS) with a site key; prints the signature
    Sign {
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        file: PathBuf,
    },
    /// Print the version
    Version,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
}

/// Where the store is: a config file and/or a data dir (the data dir wins).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Config file (omp.toml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (default from the config, else ./omp-data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl StoreArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            cfg.server.data_dir = d.clone();
        }
        Ok(cfg)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on (127.0.0.1:0 picks a free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Write the bound host:port to this file once connections are accepted
    #[arg(long, value_name = "FILE")]
    pub listen_addr_file: Option<PathBuf>,
    /// Do not start the embedded agent for this host
    #[arg(long)]
    pub no_local_agent: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Installation prefix (binary, config, state)
    #[arg(long, value_name = "P", default_value = crate::lifecycle::DEFAULT_PREFIX)]
    pub prefix: PathBuf,
    /// Data directory (store, metrics, TLS identity)
    #[arg(long, value_name = "D", default_value = crate::lifecycle::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address the server listens on
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:19001")]
    pub listen: SocketAddr,
    /// Account the server runs as (default omp under systemd, created when missing)
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Config file to write (default P/etc/omp.toml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run as a daemon with a pidfile instead of a systemd service
    #[arg(long)]
    pub no_systemd: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    /// Site public key (omp keygen) the bundle's signature must match; kept for upgrades
    #[arg(long, value_name = "FILE")]
    pub trust_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The OMP server, https://HOST:PORT (the agent channel is always TLS)
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// One-time enrollment token from the UI (Hosts → Add host); only for the first start
    #[arg(long, value_name = "TOKEN")]
    pub enroll_token: Option<String>,
    /// Where the agent keeps its credential
    #[arg(long, value_name = "DIR", default_value = "omp-agent-data")]
    pub data_dir: PathBuf,
    /// Enroll, then exit (the installer uses it before starting the service)
    #[arg(long)]
    pub enroll_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum TsdbCmd {
    /// Backfill OpenMetrics (or Prometheus text) with timestamps, into a stopped server's data
    /// dir (--data-dir) or through a running server (--server URL --token TOKEN)
    Import {
        file: PathBuf,
        /// openmetrics (timestamps in seconds) or prometheus (milliseconds)
        #[arg(long, default_value = "openmetrics", value_parser = ["openmetrics", "prometheus"])]
        format: String,
        /// A running server, e.g. http://127.0.0.1:19001
        #[arg(long, value_name = "URL", requires = "token")]
        server: Option<String>,
        /// An API token with metrics:write
        #[arg(long)]
        token: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Start a server and N simulated agents; report RSS, exec fan-out and terminal echo
    Agents {
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 20)]
        exec_rounds: usize,
        #[arg(long, default_value_t = 500)]
        echo_rounds: usize,
    },
    /// Ingest and query figures of the time-series store on node-like data
    Tsdb {
        #[arg(long, default_value_t = 1000)]
        series: usize,
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Bytes per sample on disk for real data: an OpenMetrics file with timestamps (as
    /// `tsdb import` reads) stored in a scratch store and written out whole
    TsdbFile { file: std::path::PathBuf },
    /// One memory measurement of `bench tsdb`, in a fresh process (internal)
    #[command(hide = true)]
    TsdbMem {
        #[arg(long)]
        profile: usize,
        #[arg(long, default_value_t = 100_000)]
        series: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user; the password comes from stdin with --password-stdin, else one is generated
    Add {
        username: String,
        /// Role to grant (repeatable): admin, operator, viewer or a custom role
        #[arg(long = "role", default_value = "viewer")]
        roles: Vec<String>,
        /// Read the password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a user's password (they must change it at next login unless --keep)
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        /// Do not force a change at next login
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user (or enable again with --enable)
    Disable {
        username: String,
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create an API token for a user and print it (shown once)
    Create {
        /// Owner of the token
        #[arg(long)]
        user: String,
        /// Name shown in token lists
        #[arg(long)]
        name: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Verify the hash chain; exit 0 when intact, 1 when tampered
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export the log as CSV or JSON
    Export {
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
        /// Output file (default: stdout)
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check a config file (and OMP_* overrides); print the effective config
    Check { file: PathBuf },
    /// Print the commented example config
    Example,
}

#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Write a consistent logical dump (JSON lines)
    Export {
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Open the store and migrate it to this version's schema (upgrades run it)
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Load a dump into an empty data dir
    Import {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Exit status of a verb that ran to completion.
pub type Exit = i32;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Serve(a) => serve(a),
        Command::Agent(a) => agent(a),
        Command::User(c) => user(c),
        Command::Token(TokenCmd::Create {
            user,
            name,
            expires_in_days,
            store,
        }) => {
            let cfg = store.load()?;
            let (_, audit, auth) = crate::server::open_services(&cfg)?;
            let u = auth
                .find_by_username(&user)?
                .with_context(|| format!("no user named {user}"))?;
            let t = auth.create_token(u.id, &name, expires_in_days)?;
            cli_audit(
                &audit,
                "tokens.create",
                &format!(
                    "token {} ({}) of {}",
                    t.token.name, t.token.prefix, u.username
                ),
            )?;
            println!("{}", t.token_secret);
            Ok(0)
        }
        Command::Audit(AuditCmd::Verify { store }) => {
            let cfg = store.load()?;
            let (_, audit, _) = crate::server::open_services(&cfg)?;
            let v = audit.verify()?;
            if v.ok {
                println!("audit chain intact: {} records", v.checked);
                Ok(0)
            } else {
                eprintln!(
                    "audit chain BROKEN at record {}: {} ({} records verified before it)",
                    v.first_bad_seq.unwrap_or(0),
                    v.message,
                    v.checked
                );
                Ok(1)
            }
        }
        Command::Audit(AuditCmd::Export {
            format,
            output,
            store,
        }) => {
            let cfg = store.load()?;
            let (_, audit, _) = crate::server::open_services(&cfg)?;
            let (mut records, _) = audit.list(&audit::Filter::default(), 0, usize::MAX)?;
            records.reverse();
            let mut out = open_output(output.as_ref())?;
            if format == "csv" {
                audit::write_csv(&mut out, &records)?;
            } else {
                serde_json::to_writer_pretty(&mut out, &records)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(0)
        }
        Command::Config(ConfigCmd::Check { file }) => {
            let cfg = Config::load(Some(&file))?;
            eprintln!("{}: ok", file.display());
            print!("{}", toml::to_string_pretty(&cfg)?);
            Ok(0)
        }
        Command::Config(ConfigCmd::Example) => {
            print!("{}", crate::config::EXAMPLE);
            Ok(0)
        }
        Command::Store(StoreCmd::Export { output, store }) => {
            let cfg = store.load()?;
            let (s, _, _) = crate::server::open_services(&cfg)?;
            let mut out = open_output(output.as_ref())?;
            let rows = s.export(&mut out)?;
            out.flush()?;
            eprintln!("exported {rows} rows");
            Ok(0)
        }
        Command::Store(StoreCmd::Import { file, store }) => {
            let cfg = store.load()?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open dump {}", file.display()))?;
            let s = crate::store::Store::open(&cfg.server.data_dir)?;
            let rows = s.import(&mut std::io::BufReader::new(f))?;
            eprintln!("imported {rows} rows into {}", s.path().display());
            Ok(0)
        }
        Command::Bench(BenchCmd::Agents {
            count,
            exec_rounds,
            echo_rounds,
        }) => {
            crate::init_logging(&crate::config::LogConfig {
                level: "warn".into(),
                format: "text".into(),
            });
            crate::bench::run(crate::bench::BenchOptions {
                count,
                exec_rounds,
                echo_rounds,
            })?;
            Ok(0)
        }
        Command::Tsdb(TsdbCmd::Import {
            file,
            format,
            server,
            token,
            store,
        }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report: serde_json::Value = match (server, token) {
                (Some(server), Some(token)) => {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let url = format!(
                        "{}/api/v1/metrics/import?format={format}",
                        server.trim_end_matches('/')
                    );
                    let mut r = agent
                        .post(&url)
                        .header("authorization", &format!("Bearer {token}"))
                        .header("content-type", "text/plain")
                        .send(text.as_bytes())
                        .with_context(|| format!("cannot reach {server}"))?;
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.body_mut().read_json().unwrap_or_default();
                    if status != 200 {
                        bail!(
                            "the server refused the import ({status}): {}",
                            body["error"]["message"].as_str().unwrap_or("no message")
                        );
                    }
                    body
                }
                _ => {
                    let cfg = store.load()?;
                    let fmt = if format == "prometheus" {
                        crate::tsdb::exposition::Format::Prometheus
                    } else {
                        crate::tsdb::exposition::Format::OpenMetrics
                    };
                    let opts = cfg.tsdb.options();
                    // The store lock tells whether a server is running on this data dir.
                    let _store = crate::store::Store::open(&cfg.server.data_dir)?;
                    let (mut db, _) =
                        crate::tsdb::db::Tsdb::open(&cfg.server.data_dir.join("tsdb"), opts)?;
                    let now = chrono::Utc::now().timestamp_millis();
                    let r = crate::metrics::import_text(&text, fmt, |b| db.ingest_at(b, now))
                        .map_err(|e| anyhow::anyhow!(e))?;
                    serde_json::to_value(&r)?
                }
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(0)
        }
        Command::Bench(BenchCmd::Tsdb { series, hours }) => {
            crate::bench::tsdb(series, hours)?;
            Ok(0)
        }
        Command::Bench(BenchCmd::TsdbFile { file }) => {
            crate::bench::tsdb_file(&file)?;
            Ok(0)
        }
        Command::Bench(BenchCmd::TsdbMem { profile, series }) => {
            crate::bench::tsdb_mem(profile, series)?;
            Ok(0)
        }
        Command::Store(StoreCmd::Migrate { store }) => {
            let cfg = store.load()?;
            let s = crate::store::Store::open(&cfg.server.data_dir)?;
            println!(
                "{} at schema version {}",
                s.path().display(),
                crate::store::SCHEMA_VERSION
            );
            Ok(0)
        }
        Command::Install(a) => {
            crate::lifecycle::install::install(&crate::lifecycle::install::InstallOptions {
                prefix: a.prefix,
                data_dir: a.data_dir,
                listen: a.listen,
                user: a.user,
                config: a.config,
                no_systemd: a.no_systemd,
                yes: a.yes,
                trust_key: a.trust_key,
            })?;
            Ok(0)
        }
        Command::Uninstall { prefix, purge, yes } => {
            crate::lifecycle::install::uninstall(&prefix, purge, yes)?;
            Ok(0)
        }
        Command::Ctl {
            which,
            action,
            prefix,
        } => {
            const ACTIONS: [&str; 4] = ["status", "start", "stop", "restart"];
            // `omp ctl stop` means all services.
            let (which, action) = match (which, action) {
                (Some(w), None) if ACTIONS.contains(&w.as_str()) => ("all".to_string(), w),
                (w, a) => (
                    w.unwrap_or_else(|| "all".into()),
                    a.unwrap_or_else(|| "status".into()),
                ),
            };
            crate::lifecycle::install::ctl(&prefix, &which, &action)
        }
        Command::Upgrade {
            tarball,
            from,
            prefix,
            trust_key,
        } => {
            let from = from
                .map(|f| crate::lifecycle::steps::Step::parse(&f))
                .transpose()
                .map_err(|e| anyhow::anyhow!(e))?;
            crate::lifecycle::upgrade::upgrade(&crate::lifecycle::upgrade::UpgradeOptions {
                tarball,
                from,
                prefix,
                trust_key,
            })?;
            Ok(0)
        }
        Command::Rollback { prefix } => {
            crate::lifecycle::upgrade::rollback(&prefix)?;
            Ok(0)
        }
        Command::Keygen { out } => {
            let public = crate::lifecycle::sign::keygen(&out)?;
            println!(
                "private key: {} (keep it off the servers); public key: {public} (give it to install/upgrade --trust-key)",
                out.display()
            );
            Ok(0)
        }
        Command::Sign { key, file } => {
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            println!("{}", crate::lifecycle::sign::sign(&key, &data)?);
            Ok(0)
        }
        Command::Version => {
            println!("omp {}", crate::version());
            Ok(0)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "omp", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn open_output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

fn serve(a: ServeArgs) -> anyhow::Result<Exit> {
    let mut cfg = a.store.load()?;
    if let Some(l) = a.listen {
        cfg.server.listen = l;
    }
    if a.no_local_agent {
        cfg.server.local_agent = false;
    }
    crate::init_logging(&cfg.log);
    let admin_password = std::env::var("OMP_ADMIN_PASSWORD").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking threads (scrapes every 15 s, store writes) are kept a while instead of
        // being made anew each time.
        .thread_keep_alive(std::time::Duration::from_secs(60))
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.server.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is the port in use? pick another with --listen)",
                    cfg.server.listen
                )
            })?;
        let opts = crate::server::RunOptions {
            listen_addr_file: a.listen_addr_file,
            admin_password,
        };
        crate::server::run(cfg, listener, opts, crate::server::shutdown_signal()).await
    })?;
    Ok(0)
}

fn agent(a: AgentArgs) -> anyhow::Result<Exit> {
    crate::init_logging(&crate::config::LogConfig::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let opts = crate::agent::AgentOptions {
        server: a.server,
        enroll_token: a.enroll_token,
        data_dir: a.data_dir,
        enroll_only: a.enroll_only,
    };
    // As the server does: once connected and settled, the binary's start-up pages go.
    rt.spawn(crate::memtrim::release_after_start());
    rt.block_on(crate::agent::run(opts, crate::server::shutdown_signal()))?;
    Ok(0)
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        if pw.is_empty() {
            bail!("no password on stdin");
        }
        Ok((pw, false))
    } else {
        Ok((password::generate(), true))
    }
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn cli_audit(audit: &audit::Audit, action: &str, target: &str) -> anyhow::Result<()> {
    audit.append(audit::Entry {
        actor: cli_actor(),
        action: action.into(),
        target: target.into(),
        source: "local".into(),
        success: true,
        ..Default::default()
    })?;
    Ok(())
}

/// A principal with full rights for CLI actions: whoever can open the store file already
/// holds everything in it.
fn cli_principal(auth: &crate::auth::Auth) -> anyhow::Result<crate::auth::Principal> {
    let user = User {
        id: 0,
        username: cli_actor(),
        display_name: String::new(),
        email: String::new(),
        roles: vec![crate::model::ROLE_ADMIN.into()],
        disabled: false,
        password_hash: String::new(),
        must_change_password: false,
        totp_secret: None,
        totp_pending: None,
        language: "en".into(),
        created_at: 0,
        last_login_at: None,
    };
    Ok(crate::auth::Principal {
        grants: auth.grants_of(&user)?,
        user,
        via: crate::auth::Via::Token { id: "cli".into() },
    })
}

fn user(c: UserCmd) -> anyhow::Result<Exit> {
    match c {
        UserCmd::Add {
            username,
            roles,
            password_stdin,
            store,
        } => {
            let cfg = store.load()?;
            let (_, audit, auth) = crate::server::open_services(&cfg)?;
            let (pw, generated) = read_password(password_stdin)?;
            let u = auth.create_user(NewUser {
                username,
                password: pw.clone(),
                display_name: String::new(),
                email: String::new(),
                roles,
            })?;
            cli_audit(&audit, "users.create", &u.username)?;
            if generated {
                println!(
                    "user {} created; password (change it at first login): {pw}",
                    u.username
                );
            } else {
                println!(
                    "user {} created; the password must be changed at first login",
                    u.username
                );
            }
            Ok(0)
        }
        UserCmd::Passwd {
            username,
            password_stdin,
            keep,
            store,
        } => {
            let cfg = store.load()?;
            let (_, audit, auth) = crate::server::open_services(&cfg)?;
            let u = auth
                .find_by_username(&username)?
                .with_context(|| format!("no user named {username}"))?;
            let (pw, generated) = read_password(password_stdin)?;
            auth.reset_password(u.id, &pw)?;
            if keep {
                auth.clear_must_change(u.id)?;
            }
            cli_audit(&audit, "users.reset_password", &u.username)?;
            if generated {
                println!("new password for {}: {pw}", u.username);
            } else {
                println!("password of {} changed", u.username);
            }
            Ok(0)
        }
        UserCmd::List { store } => {
            let cfg = store.load()?;
            let (_, _, auth) = crate::server::open_services(&cfg)?;
            let (users, _) = auth.list_users(None, 0, usize::MAX)?;
            println!(
                "{:<6} {:<24} {:<24} {:<9} TOTP",
                "ID", "USERNAME", "ROLES", "STATE"
            );
            for u in users {
                println!(
                    "{:<6} {:<24} {:<24} {:<9} {}",
                    u.id,
                    u.username,
                    u.roles.join(","),
                    if u.disabled { "disabled" } else { "enabled" },
                    if u.totp_secret.is_some() { "on" } else { "off" }
                );
            }
            Ok(0)
        }
        UserCmd::Disable {
            username,
            enable,
            store,
        } => {
            let cfg = store.load()?;
            let (_, audit, auth) = crate::server::open_services(&cfg)?;
            let u = auth
                .find_by_username(&username)?
                .with_context(|| format!("no user named {username}"))?;
            let p = cli_principal(&auth)?;
            auth.update_user(
                &p,
                u.id,
                UserPatch {
                    disabled: Some(!enable),
                    ..Default::default()
                },
            )?;
            cli_audit(
                &audit,
                "users.update",
                &format!(
                    "{} {}",
                    u.username,
                    if enable { "enabled" } else { "disabled" }
                ),
            )?;
            println!(
                "user {} {}",
                u.username,
                if enable { "enabled" } else { "disabled" }
            );
            Ok(0)
        }
    }
}

/// Reads all of stdin (for tests of verbs that take input).
pub fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s)
}
