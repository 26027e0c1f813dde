//! `omp upgrade TARBALL [--from STEP]` and `omp rollback`: the steps of `steps::Step` done
//! for real, the run recorded in `P/upgrade/state.json` after every transition and logged to
//! `P/upgrade/upgrade.log`. A failure before the swap leaves (or restarts) the old version;
//! a failure after it restores the binary, config, units and the store snapshot from
//! `P/backup/previous/` and starts the old version again.
//!
//! Test hook: `OMP_UPGRADE_FAIL_AT=<step>` stops the run just before that step as if the
//! process had been killed there (no repair), so tests can resume it with `--from`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use super::bundle::{self, Bundle};
use super::progress::Progress;
use super::service::{self, Svc};
use super::steps::{self, OnFailure, Outcome, RunState, Step, StepStatus};
use super::{InstallState, Layout, Mode};

const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
const SNAPSHOT_DONE: &str = "SNAPSHOT-COMPLETE";

#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    pub tarball: PathBuf,
    pub from: Option<Step>,
    pub prefix: PathBuf,
    pub trust_key: Option<PathBuf>,
}

struct Ctx {
    layout: Layout,
    st: InstallState,
    trusted: Option<Vec<u8>>,
    bundle: Option<Bundle>,
    log: std::fs::File,
}

impl Ctx {
    fn log(&mut self, msg: &str) {
        let _ = writeln!(
            self.log,
            "{} {msg}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    fn staging(&self) -> PathBuf {
        self.layout.upgrade_dir().join("staging")
    }
    fn bundle(&self) -> anyhow::Result<&Bundle> {
        self.bundle
            .as_ref()
            .ok_or_else(|| anyhow!("the verified bundle is missing: resume with --from verify"))
    }
}

fn state_path(l: &Layout) -> PathBuf {
    l.upgrade_dir().join("state.json")
}

pub fn load_run(l: &Layout) -> Option<RunState> {
    let text = std::fs::read_to_string(state_path(l)).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_run(l: &Layout, run: &RunState) -> anyhow::Result<()> {
    super::write_atomic(
        &state_path(l),
        serde_json::to_string_pretty(run)?.as_bytes(),
        0o644,
    )
}

fn trusted_key(l: &Layout, flag: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    let site = l.prefix.join("etc/release-key.pub");
    match flag {
        Some(p) => super::sign::read_public(p).map(Some),
        None if site.exists() => super::sign::read_public(&site).map(Some),
        None => Ok(None),
    }
}

fn open_ctx(l: &Layout, trust_key: Option<&Path>) -> anyhow::Result<Ctx> {
    let st = InstallState::load(l)?;
    std::fs::create_dir_all(l.upgrade_dir())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.upgrade_dir().join("upgrade.log"))
        .context("cannot open the upgrade log")?;
    Ok(Ctx {
        layout: l.clone(),
        st,
        trusted: trusted_key(l, trust_key)?,
        bundle: None,
        log,
    })
}

pub fn upgrade(o: &UpgradeOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let layout = Layout::new(&o.prefix);
    let mut ctx = open_ctx(&layout, o.trust_key.as_deref())?;
    let tarball = std::path::absolute(&o.tarball)?;
    let sha = bundle::sha256_file(&tarball)
        .with_context(|| format!("cannot read the tarball {}", tarball.display()))?;
    let previous = load_run(&layout);
    let same = previous.as_ref().is_some_and(|p| p.tarball_sha256 == sha);
    let start = steps::start_at(previous.as_ref(), o.from, same).map_err(|e| anyhow!(e))?;
    let mut run = match previous {
        Some(p) if start != Step::Verify => p,
        _ => RunState::new(&tarball.display().to_string(), &sha, &ctx.st.version),
    };
    if start != Step::Verify {
        // Resuming: the staged bundle is checked again (cheap) rather than trusted.
        let to = run.to_version.clone().unwrap_or_default();
        let root = ctx.staging().join(format!("omp-{to}"));
        ctx.bundle = Some(
            Bundle::open(&root, ctx.trusted.as_deref()).with_context(|| {
                format!(
                    "the staged bundle {} is unusable: resume with --from verify",
                    root.display()
                )
            })?,
        );
    }
    ctx.log(&format!(
        "upgrade of {} with {} starting at {}",
        run.from_version,
        tarball.display(),
        start.name()
    ));
    let hook = std::env::var("OMP_UPGRADE_FAIL_AT").ok();
    let todo: Vec<Step> = Step::ALL.into_iter().filter(|&s| s >= start).collect();
    let mut p = Progress::new(todo.len());
    for step in todo {
        p.step(step.name());
        if hook.as_deref() == Some(step.name()) {
            run.record(step).status = StepStatus::Pending;
            save_run(&layout, &run)?;
            ctx.log(&format!(
                "interrupted before {} (OMP_UPGRADE_FAIL_AT)",
                step.name()
            ));
            bail!(
                "the upgrade was interrupted before step {} (OMP_UPGRADE_FAIL_AT): resume with omp upgrade {} --from {}",
                step.name(),
                tarball.display(),
                step.name()
            );
        }
        {
            let r = run.record(step);
            r.status = StepStatus::Running;
            r.started_at = Some(super::now());
        }
        save_run(&layout, &run)?;
        let t = Instant::now();
        let result = do_step(step, &mut ctx, &mut run);
        let r = run.record(step);
        r.finished_at = Some(super::now());
        match result {
            Ok(msg) => {
                r.status = StepStatus::Done;
                r.log
                    .push(format!("{msg} ({} ms)", t.elapsed().as_millis()));
                ctx.log(&format!("{}: {msg}", step.name()));
                save_run(&layout, &run)?;
            }
            Err(e) => {
                let err = format!("{e:#}");
                r.status = StepStatus::Failed;
                r.log.push(err.clone());
                ctx.log(&format!("{} FAILED: {err}", step.name()));
                save_run(&layout, &run)?;
                p.finish();
                return Err(handle_failure(&mut ctx, &mut run, step, &tarball, err));
            }
        }
    }
    run.outcome = Outcome::Succeeded;
    save_run(&layout, &run)?;
    p.finish();
    println!(
        "OMP upgraded from {} to {} in {:.1} s; the previous version stays in {} (omp rollback --prefix {} returns to it).",
        run.from_version,
        run.to_version.as_deref().unwrap_or("?"),
        started.elapsed().as_secs_f64(),
        layout.previous().display(),
        layout.prefix.display()
    );
    Ok(())
}

fn handle_failure(
    ctx: &mut Ctx,
    run: &mut RunState,
    step: Step,
    tarball: &Path,
    err: String,
) -> anyhow::Error {
    let to = run.to_version.clone().unwrap_or_else(|| "?".into());
    match steps::on_failure(run, step) {
        OnFailure::Report => anyhow!(
            "the upgrade to {to} failed at step {}: {err}\nNothing was changed. Fix the cause and resume with: omp upgrade {} --from {}",
            step.name(),
            tarball.display(),
            step.name()
        ),
        OnFailure::RestartOld => {
            let restarted = service::start(&ctx.layout, &ctx.st, Svc::Server)
                .and_then(|_| service::wait_healthy(&ctx.layout, &ctx.st, None, HEALTH_TIMEOUT));
            ctx.log(&format!("restart of the old version: {restarted:?}"));
            anyhow!(
                "the upgrade to {to} failed at step {}: {err}\nThe binary was not replaced; {}. Fix the cause and resume with: omp upgrade {} --from {}",
                step.name(),
                match restarted {
                    Ok(_) => format!("version {} runs again", ctx.st.version),
                    Err(e) => format!(
                        "restarting version {} failed too ({e:#}): start it with omp ctl start",
                        ctx.st.version
                    ),
                },
                tarball.display(),
                step.name()
            )
        }
        OnFailure::RollBack => {
            let snapshot_taken = run.status(Step::Snapshot) == StepStatus::Done;
            let result = restore_previous(ctx, snapshot_taken);
            match result {
                Ok(old) => {
                    run.mark_rolled_back();
                    let _ = save_run(&ctx.layout, run);
                    ctx.log(&format!("rolled back to {old}"));
                    anyhow!(
                        "the upgrade to {to} failed at step {}: {err}\nRolled back automatically: version {old} runs again and is healthy, with the data as it was before the upgrade. See {}",
                        step.name(),
                        ctx.layout.upgrade_dir().join("upgrade.log").display()
                    )
                }
                Err(e) => {
                    run.outcome = Outcome::RollbackFailed;
                    let _ = save_run(&ctx.layout, run);
                    ctx.log(&format!("ROLLBACK FAILED: {e:#}"));
                    anyhow!(
                        "the upgrade to {to} failed at step {}: {err}\nThe automatic rollback failed too: {e:#}\nThe previous version is in {}: fix the cause and run omp rollback --prefix {}",
                        step.name(),
                        ctx.layout.previous().display(),
                        ctx.layout.prefix.display()
                    )
                }
            }
        }
    }
}

fn do_step(step: Step, ctx: &mut Ctx, run: &mut RunState) -> anyhow::Result<String> {
    let l = ctx.layout.clone();
    let prev = l.previous();
    match step {
        Step::Verify => {
            let tarball = PathBuf::from(&run.tarball);
            let b = Bundle::unpack(&tarball, &ctx.staging(), ctx.trusted.as_deref())?;
            let msg = format!(
                "version {}, every file matches SHA256SUMS, {}",
                b.version,
                if b.signed {
                    "signature valid"
                } else {
                    "not signed (no site key trusted)"
                }
            );
            run.to_version = Some(b.version.clone());
            ctx.bundle = Some(b);
            Ok(msg)
        }
        Step::Precheck => {
            let to = ctx.bundle()?.version.clone();
            if steps::version_cmp(&to, &ctx.st.version) != std::cmp::Ordering::Greater {
                bail!(
                    "{to} is not newer than the installed {}: to return to the version before the last upgrade use omp rollback",
                    ctx.st.version
                );
            }
            let mut f = super::checks::host_facts();
            let data = tree_size_data(&ctx.st.data_dir);
            f.need_bytes =
                super::checks::need_bytes(2 * super::tree_size(&l.bin()) + data + (32 << 20));
            f.free_path = super::checks::existing_ancestor(&l.backup_dir());
            f.free_bytes = super::checks::free_bytes(&l.backup_dir());
            if let Some(why) = super::checks::unwritable(&l.prefix) {
                f.unwritable.push((l.prefix.clone(), why));
            }
            if !super::is_root() && ctx.st.mode == Mode::Systemd {
                f.want_systemd = true;
                f.systemd_running = true;
            }
            let problems = super::checks::problems(&f);
            if !problems.is_empty() {
                bail!("{}", problems.join("; "));
            }
            Ok(format!(
                "{} → {to}; {} MiB free",
                ctx.st.version,
                f.free_bytes >> 20
            ))
        }
        Step::Backup => {
            let tmp = l.backup_dir().join("previous.tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(tmp.join("bin"))?;
            super::copy_atomic(&l.bin(), &tmp.join("bin/omp"), 0o755)?;
            super::copy_tree(&ctx.st.config, &tmp.join("omp.toml"))?;
            super::copy_tree(&l.state_file(), &tmp.join("install.json"))?;
            if l.share().exists() {
                super::copy_tree(&l.share(), &tmp.join("share"))?;
            }
            let _ = std::fs::remove_dir_all(&prev);
            std::fs::rename(&tmp, &prev)?;
            Ok(format!(
                "binary, config and units of {} saved in {}",
                ctx.st.version,
                prev.display()
            ))
        }
        Step::Stop => {
            service::stop(&l, &ctx.st, Svc::Server)?;
            Ok("server stopped".into())
        }
        Step::Snapshot => {
            let snap = prev.join("data");
            let _ = std::fs::remove_dir_all(&snap);
            std::fs::create_dir_all(&snap)?;
            let mut bytes = 0;
            for name in ["omp.redb", "tsdb"] {
                let from = ctx.st.data_dir.join(name);
                if from.exists() {
                    bytes += super::copy_tree(&from, &snap.join(name))?;
                }
            }
            std::fs::write(snap.join(SNAPSHOT_DONE), format!("{}\n", ctx.st.version))?;
            Ok(format!("store and metrics copied ({} KiB)", bytes >> 10))
        }
        Step::Swap => {
            let b = ctx.bundle()?.clone();
            super::copy_atomic(&b.bin(), &l.bin(), 0o755)?;
            super::install::install_share(&b, &l)?;
            if ctx.st.mode == Mode::Systemd {
                super::install::install_units(&l, &ctx.st)?;
                service::systemctl(&["daemon-reload"])?;
            }
            Ok(format!(
                "{} now holds version {}",
                l.bin().display(),
                b.version
            ))
        }
        Step::Migrate => {
            let out = run_as_service_user(
                &ctx.st,
                std::process::Command::new(l.bin())
                    .args(["store", "migrate", "--config"])
                    .arg(&ctx.st.config)
                    .arg("--data-dir")
                    .arg(&ctx.st.data_dir),
            )?;
            if !out.status.success() {
                bail!(
                    "the new version could not migrate the store: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(format!(
                "store migrated: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            ))
        }
        Step::Start => {
            service::start(&l, &ctx.st, Svc::Server)?;
            Ok("server started".into())
        }
        Step::Health => {
            let to = ctx.bundle()?.version.clone();
            let took = service::wait_healthy(&l, &ctx.st, Some(&to), HEALTH_TIMEOUT)?;
            Ok(format!("healthy after {} ms", took.as_millis()))
        }
        Step::Post => {
            ctx.st.version = ctx.bundle()?.version.clone();
            ctx.st.save(&l)?;
            let _ = std::fs::remove_dir_all(ctx.staging());
            Ok(format!("installed version recorded as {}", ctx.st.version))
        }
    }
}

fn tree_size_data(data_dir: &Path) -> u64 {
    super::tree_size(&data_dir.join("omp.redb")) + super::tree_size(&data_dir.join("tsdb"))
}

fn run_as_service_user(
    st: &InstallState,
    cmd: &mut std::process::Command,
) -> anyhow::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    if let Some(user) = &st.user
        && super::is_root()
        && let Some((uid, gid)) = super::lookup_user(user)
    {
        cmd.uid(uid).gid(gid);
    }
    cmd.stdin(std::process::Stdio::null())
        .output()
        .context("cannot run the new binary")
}

/// Puts back the version in `P/backup/previous` (binary, config, install state, units and,
/// when `with_data`, the store snapshot), starts it and waits until it is healthy. The
/// store and metrics replaced are kept in `P/backup/discarded-<time>/`. Returns the version.
fn restore_previous(ctx: &mut Ctx, with_data: bool) -> anyhow::Result<String> {
    let l = ctx.layout.clone();
    let prev = l.previous();
    let old: InstallState = serde_json::from_str(
        &std::fs::read_to_string(prev.join("install.json"))
            .with_context(|| format!("no previous version in {}", prev.display()))?,
    )
    .context("the saved install state is damaged")?;
    service::stop(&l, &ctx.st, Svc::Server)?;
    if with_data {
        let snap = prev.join("data");
        if !snap.join(SNAPSHOT_DONE).exists() {
            bail!("the store snapshot in {} is incomplete", snap.display());
        }
        let aside = l.backup_dir().join(format!(
            "discarded-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::create_dir_all(&aside)?;
        for name in ["omp.redb", "tsdb"] {
            let cur = ctx.st.data_dir.join(name);
            if cur.exists() {
                move_path(&cur, &aside.join(name))?;
            }
            let saved = snap.join(name);
            if saved.exists() {
                super::copy_tree(&saved, &cur)?;
            }
        }
        super::copy_atomic(&l.bin(), &aside.join("omp"), 0o755)?;
        ctx.log(&format!(
            "data written since the upgrade kept in {}",
            aside.display()
        ));
    }
    super::copy_atomic(&prev.join("bin/omp"), &l.bin(), 0o755)?;
    super::copy_tree(&prev.join("omp.toml"), &old.config)?;
    if prev.join("share").exists() {
        super::copy_tree(&prev.join("share"), &l.share())?;
    }
    old.save(&l)?;
    ctx.st = old.clone();
    if old.mode == Mode::Systemd {
        super::install::install_units(&l, &old)?;
        service::systemctl(&["daemon-reload"])?;
    }
    service::start(&l, &old, Svc::Server)?;
    service::wait_healthy(&l, &old, Some(&old.version), HEALTH_TIMEOUT)?;
    // The backup is consumed: a second rollback would discard data again.
    let used = l.backup_dir().join(format!(
        "rolled-back-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    let _ = std::fs::rename(&prev, used);
    Ok(old.version)
}

fn move_path(from: &Path, to: &Path) -> anyhow::Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    // Another file system: copy, then remove.
    super::copy_tree(from, to)?;
    if from.is_dir() {
        std::fs::remove_dir_all(from)?;
    } else {
        std::fs::remove_file(from)?;
    }
    Ok(())
}

/// `omp rollback`: back to the version before the last upgrade.
pub fn rollback(prefix: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let layout = Layout::new(prefix);
    let mut ctx = open_ctx(&layout, None)?;
    let prev = layout.previous();
    if !prev.join("install.json").exists() {
        bail!(
            "there is nothing to roll back to: {} holds no previous version (only the version before the last upgrade can be restored, once)",
            prev.display()
        );
    }
    let with_data = prev.join("data").join(SNAPSHOT_DONE).exists();
    if !with_data {
        bail!(
            "the backup in {} has no complete store snapshot (the last upgrade stopped before its snapshot step): nothing to roll back",
            prev.display()
        );
    }
    let from = ctx.st.version.clone();
    let mut p = Progress::new(1);
    p.step("restoring the previous version");
    ctx.log(&format!("manual rollback from {from}"));
    let old = restore_previous(&mut ctx, true)?;
    if let Some(mut run) = load_run(&layout) {
        run.mark_rolled_back();
        save_run(&layout, &run)?;
    }
    p.finish();
    println!(
        "Rolled back from {from} to {old} in {:.1} s. The store is as it was before the upgrade; what was written since is kept in {}/discarded-*/.",
        started.elapsed().as_secs_f64(),
        layout.backup_dir().display()
    );
    Ok(())
}
