//! The upgrade pipeline as data: the named steps, the state recorded after each one, and
//! the decisions "where does this run start" and "what does a failure at step S call for".
//! Sans-IO: `upgrade` does the work and persists [`RunState`]; everything here is tested
//! without files or processes.

use serde::{Deserialize, Serialize};

/// One step of `omp upgrade`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Unpack the tarball safely; check SHA256SUMS (and its signature), version, arch.
    Verify,
    /// An installation exists, the version is newer, enough disk space.
    Precheck,
    /// Copy the running binary, config and install state aside.
    Backup,
    /// Stop the server.
    Stop,
    /// Copy the store and metrics (consistent: the server is stopped).
    Snapshot,
    /// Replace the binary atomically (rename).
    Swap,
    /// Let the new binary migrate the store schema.
    Migrate,
    /// Start the server.
    Start,
    /// Wait for /healthz answered by the new version.
    Health,
    /// Clean up the staging area; record success.
    Post,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::Verify,
        Step::Precheck,
        Step::Backup,
        Step::Stop,
        Step::Snapshot,
        Step::Swap,
        Step::Migrate,
        Step::Start,
        Step::Health,
        Step::Post,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Verify => "verify",
            Step::Precheck => "precheck",
            Step::Backup => "backup",
            Step::Stop => "stop",
            Step::Snapshot => "snapshot",
            Step::Swap => "swap",
            Step::Migrate => "migrate",
            Step::Start => "start",
            Step::Health => "health",
            Step::Post => "post",
        }
    }

    pub fn parse(s: &str) -> Result<Step, String> {
        Step::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Step::ALL.iter().map(|x| x.name()).collect();
                format!("unknown step {s:?}: the steps are {}", names.join(", "))
            })
    }

    fn index(self) -> usize {
        Step::ALL.iter().position(|&x| x == self).unwrap_or(0)
    }

    /// Steps that record the old installation; re-running them after the swap would save
    /// the new version as "previous".
    fn captures_old(self) -> bool {
        matches!(self, Step::Backup | Step::Snapshot)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    pub status: StepStatus,
    /// Unix seconds.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// What the step did or why it failed.
    pub log: Vec<String>,
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Started and not finished: interrupted, or stopped by a failure before the swap.
    InProgress,
    Succeeded,
    /// A failure after the swap was undone; the previous version runs again.
    RolledBack,
    /// The rollback itself failed: manual repair needed (the log says what).
    RollbackFailed,
}

/// What `P/upgrade/state.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub tarball: String,
    /// Hex SHA-256 of the tarball: a resumed run must use the same file.
    pub tarball_sha256: String,
    pub from_version: String,
    pub to_version: Option<String>,
    pub outcome: Outcome,
    pub steps: Vec<StepRecord>,
}

impl RunState {
    pub fn new(tarball: &str, sha256: &str, from_version: &str) -> RunState {
        RunState {
            tarball: tarball.into(),
            tarball_sha256: sha256.into(),
            from_version: from_version.into(),
            to_version: None,
            outcome: Outcome::InProgress,
            steps: Step::ALL
                .iter()
                .map(|&step| StepRecord {
                    step,
                    status: StepStatus::Pending,
                    started_at: None,
                    finished_at: None,
                    log: Vec::new(),
                })
                .collect(),
        }
    }

    pub fn record(&mut self, step: Step) -> &mut StepRecord {
        &mut self.steps[step.index()]
    }

    pub fn status(&self, step: Step) -> StepStatus {
        self.steps[step.index()].status
    }

    /// The first step not done.
    pub fn first_pending(&self) -> Option<Step> {
        self.steps
            .iter()
            .find(|r| r.status != StepStatus::Done)
            .map(|r| r.step)
    }

    /// After a rollback the steps from `stop` on are undone; the backup stays valid.
    pub fn mark_rolled_back(&mut self) {
        for r in &mut self.steps {
            if r.step >= Step::Stop {
                if r.status == StepStatus::Done {
                    r.log.push("undone by the rollback".into());
                }
                if r.status != StepStatus::Failed {
                    r.status = StepStatus::Pending;
                }
            }
        }
        self.outcome = Outcome::RolledBack;
    }
}

/// Where a run of `omp upgrade TARBALL [--from STEP]` starts, given the recorded state.
/// `same_tarball`: the recorded run used the same file (by hash).
pub fn start_at(
    previous: Option<&RunState>,
    from: Option<Step>,
    same_tarball: bool,
) -> Result<Step, String> {
    let unfinished = previous.filter(|p| p.outcome == Outcome::InProgress);
    let Some(p) = unfinished else {
        return match from {
            None | Some(Step::Verify) => Ok(Step::Verify),
            Some(s) => Err(format!(
                "there is no unfinished upgrade to resume at {:?}: run omp upgrade TARBALL without --from",
                s.name()
            )),
        };
    };
    let Some(s) = from else {
        // Until the binary is swapped, starting over is safe (and the way past a tarball
        // that failed verification); after it, only resuming or rolling back is.
        return if p.status(Step::Swap) == StepStatus::Done {
            Err(resume_advice(p))
        } else {
            Ok(Step::Verify)
        };
    };
    if !same_tarball {
        return Err(format!(
            "the unfinished upgrade used another tarball ({}): resume with that file, or undo it with omp rollback",
            p.tarball
        ));
    }
    let pending = p.first_pending().unwrap_or(Step::Post);
    if s > pending {
        return Err(format!(
            "cannot resume at {:?}: step {:?} is not done yet (resume with --from {})",
            s.name(),
            pending.name(),
            pending.name()
        ));
    }
    if p.status(Step::Swap) == StepStatus::Done
        && Step::ALL[s.index()..pending.index()]
            .iter()
            .any(|x| x.captures_old())
    {
        return Err(format!(
            "cannot resume at {:?}: the new binary is already in place, and re-running backup or snapshot would record it as the previous version (resume with --from {})",
            s.name(),
            pending.name()
        ));
    }
    Ok(s)
}

fn resume_advice(p: &RunState) -> String {
    let at = p.first_pending().unwrap_or(Step::Post);
    format!(
        "an upgrade from {} to {} stopped before step {:?}: fix the cause and resume with `omp upgrade {} --from {}`, or undo it with `omp rollback`",
        p.from_version,
        p.to_version.as_deref().unwrap_or("?"),
        at.name(),
        p.tarball,
        at.name()
    )
}

/// What a failure at `step` calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Nothing was changed (or only backups were written): just report.
    Report,
    /// The server was stopped but the binary not yet swapped: start the old one again.
    RestartOld,
    /// The binary (and maybe the store) changed: restore everything from the backup.
    RollBack,
}

pub fn on_failure(state: &RunState, step: Step) -> OnFailure {
    if step >= Step::Swap || state.status(Step::Swap) == StepStatus::Done {
        OnFailure::RollBack
    } else if step >= Step::Stop {
        OnFailure::RestartOld
    } else {
        OnFailure::Report
    }
}

/// Compares `MAJOR.MINOR.PATCH` versions (a `-suffix` sorts before the plain version).
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(v: &str) -> (Vec<u64>, bool, String) {
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (v.split('+').next().unwrap_or(v), None),
        };
        let nums = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
        // No suffix (a release) sorts after any pre-release of the same numbers.
        (nums, pre.is_none(), pre.unwrap_or("").to_string())
    }
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_done_until(step: Step) -> RunState {
        let mut s = RunState::new("/t.tar.gz", "abc", "0.1.0");
        s.to_version = Some("0.2.0".into());
        for r in &mut s.steps {
            if r.step < step {
                r.status = StepStatus::Done;
            }
        }
        s
    }

    #[test]
    fn where_a_run_starts() {
        // (steps done before, --from, same tarball, expected start or error fragment)
        type Case = (
            Option<Step>,
            Option<&'static str>,
            bool,
            Result<Step, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (None, None, true, Ok(Step::Verify)),
            (None, Some("verify"), true, Ok(Step::Verify)),
            (None, Some("start"), true, Err("no unfinished upgrade")),
            (Some(Step::Stop), None, true, Ok(Step::Verify)),
            (Some(Step::Stop), None, false, Ok(Step::Verify)),
            (Some(Step::Migrate), None, true, Err("--from migrate")),
            (Some(Step::Stop), Some("stop"), true, Ok(Step::Stop)),
            (Some(Step::Stop), Some("backup"), true, Ok(Step::Backup)),
            (Some(Step::Stop), Some("verify"), true, Ok(Step::Verify)),
            (
                Some(Step::Stop),
                Some("swap"),
                true,
                Err("step \"stop\" is not done"),
            ),
            (
                Some(Step::Stop),
                Some("stop"),
                false,
                Err("another tarball"),
            ),
            (Some(Step::Start), Some("start"), true, Ok(Step::Start)),
            (Some(Step::Start), Some("migrate"), true, Ok(Step::Migrate)),
            (Some(Step::Start), Some("swap"), true, Ok(Step::Swap)),
            (
                Some(Step::Start),
                Some("snapshot"),
                true,
                Err("previous version"),
            ),
            (Some(Step::Start), Some("verify"), true, Err("--from start")),
            (Some(Step::Post), Some("post"), true, Ok(Step::Post)),
        ];
        for (done_until, from, same, want) in cases {
            let prev = done_until.map(state_done_until);
            let from = from.map(|f| Step::parse(f).unwrap());
            let got = start_at(prev.as_ref(), from, same);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{done_until:?} {from:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{g} should contain {w}"),
                _ => panic!("{done_until:?} {from:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn finished_runs_do_not_block_new_ones() {
        for outcome in [
            Outcome::Succeeded,
            Outcome::RolledBack,
            Outcome::RollbackFailed,
        ] {
            let mut s = state_done_until(Step::Health);
            s.outcome = outcome;
            assert_eq!(start_at(Some(&s), None, false), Ok(Step::Verify));
        }
    }

    #[test]
    fn failures_call_for_the_right_repair() {
        let s = state_done_until(Step::Verify);
        let want = [
            (Step::Verify, OnFailure::Report),
            (Step::Precheck, OnFailure::Report),
            (Step::Backup, OnFailure::Report),
            (Step::Stop, OnFailure::RestartOld),
            (Step::Snapshot, OnFailure::RestartOld),
            (Step::Swap, OnFailure::RollBack),
            (Step::Migrate, OnFailure::RollBack),
            (Step::Start, OnFailure::RollBack),
            (Step::Health, OnFailure::RollBack),
            (Step::Post, OnFailure::RollBack),
        ];
        for (step, w) in want {
            assert_eq!(on_failure(&s, step), w, "{step:?}");
        }
        // A resumed run at `stop` after a completed swap must still roll back.
        let mut swapped = state_done_until(Step::Migrate);
        swapped.record(Step::Stop).status = StepStatus::Pending;
        assert_eq!(on_failure(&swapped, Step::Stop), OnFailure::RollBack);
    }

    #[test]
    fn rollback_resets_undone_steps() {
        let mut s = state_done_until(Step::Health);
        s.record(Step::Health).status = StepStatus::Failed;
        s.mark_rolled_back();
        assert_eq!(s.outcome, Outcome::RolledBack);
        assert_eq!(s.status(Step::Backup), StepStatus::Done);
        assert_eq!(s.status(Step::Swap), StepStatus::Pending);
        assert_eq!(s.status(Step::Health), StepStatus::Failed);
    }

    #[test]
    fn step_names_round_trip_and_versions_order() {
        for s in Step::ALL {
            assert_eq!(Step::parse(s.name()), Ok(s));
        }
        assert!(
            Step::parse("nope")
                .unwrap_err()
                .contains("verify, precheck")
        );
        use std::cmp::Ordering::*;
        for (a, b, o) in [
            ("0.1.0", "0.2.0", Less),
            ("0.10.0", "0.9.9", Greater),
            ("1.0.0-rc.1", "1.0.0", Less),
            ("1.0.0", "1.0.0", Equal),
            ("1.0.0+b", "1.0.0", Equal),
        ] {
            assert_eq!(version_cmp(a, b), o, "{a} {b}");
        }
    }
}
