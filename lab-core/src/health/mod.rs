//! Health checks: http, tcp and command checks, run on the machine (through
//! its [`Executor`](crate::exec::Executor), so `localhost` is the machine) or
//! from the controller, once ([`check_once`], [`check_fleet_once`]) or polled
//! until the machine is healthy ([`wait_healthy`]).
//!
//! A [`Prober`] makes one attempt of one check; everything above it (timeouts,
//! thresholds, deadlines, concurrency) is independent of how the attempt is
//! made, so it is tested with scripted probers under a paused clock.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::metadata::{CheckType, HealthCheck, RunOn};

mod poll;
mod probe;
mod target;

pub use poll::{
    check_fleet_once, check_once, wait_healthy, CheckState, CheckStatus, Healthy, Tracker, Unhealthy, UnhealthyCheck,
    DEFAULT_CONCURRENCY,
};
pub use probe::{probe_command, probe_http, probe_tcp, HttpClients, LocalProber};
pub use target::{MachineProber, TargetTools};

/// How an attempt was made; reports say it so a fallback is never silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// In lab's own process on the controller.
    Controller,
    /// In lab's own process on the machine itself (`lab health --local`).
    Local,
    /// By `lab health --local` on the machine, over the executor.
    Lab,
    /// By curl on the machine.
    Curl,
    /// By bash's `/dev/tcp` on the machine.
    BashDevTcp,
    /// By `nc -z` on the machine.
    Nc,
    /// By `sh -c` on the machine.
    Shell,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Controller => "controller",
            Via::Local => "local",
            Via::Lab => "lab on target",
            Via::Curl => "curl on target",
            Via::BashDevTcp => "bash /dev/tcp on target",
            Via::Nc => "nc on target",
            Via::Shell => "sh on target",
        })
    }
}

/// The outcome of one attempt of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Whether it passed.
    pub passed: bool,
    /// How long the attempt took.
    pub latency: Duration,
    /// What was observed (`200 OK`, `connection refused`, `timed out after 5 s`).
    pub message: String,
    /// How it was made.
    pub via: Via,
}

impl Attempt {
    /// A failed attempt that produced nothing but `message`.
    pub fn failed(message: impl Into<String>, latency: Duration, via: Via) -> Self {
        Attempt { passed: false, latency, message: message.into(), via }
    }
}

/// Makes one attempt of one check.
#[async_trait]
pub trait Prober: Send + Sync {
    /// Runs `check` once. Never errors: every failure is a failed [`Attempt`]
    /// that says why. Should finish within the check's timeout (callers also
    /// bound it).
    async fn probe(&self, check: &HealthCheck) -> Attempt;

    /// Gets ready to probe (looks up what the machine has), so the first
    /// attempt after a reboot costs one round trip. Best effort: a failure
    /// is found again, and reported, by the first attempt.
    async fn prepare(&self) {}
}

/// One check's result in a report (`lab health`, `lab health --local`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The machine.
    pub machine: String,
    /// Position of the check in the machine's `healthChecks`.
    pub index: usize,
    /// The check's label (`http http://localhost/health`, `tcp localhost:5432`).
    pub check: String,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: CheckType,
    /// Whether it blocks.
    pub required: bool,
    /// Where it runs.
    pub run_on: RunOn,
    /// Whether it passed.
    pub passed: bool,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u64,
    /// What was observed.
    pub message: String,
    /// How it was made.
    pub via: Via,
}

/// Whether a health report is clean: no required check failed (a failed
/// optional check is a warning). `lab health` exits 0 and `lab_health`
/// answers `LAB_OK` exactly when it is.
pub fn is_clean(reports: &[CheckResult]) -> bool {
    !reports.iter().any(CheckResult::failed)
}

impl CheckResult {
    /// Whether this is a required check that failed: what makes a report
    /// not clean and a machine unhealthy.
    pub fn failed(&self) -> bool {
        self.required && !self.passed
    }

    /// The report of `attempt` of check number `index` of `machine`.
    pub fn new(machine: &str, index: usize, check: &HealthCheck, attempt: Attempt) -> Self {
        CheckResult {
            machine: machine.to_string(),
            index,
            check: check.label(),
            kind: check.kind(),
            required: check.common().required,
            run_on: check.common().run_on,
            passed: attempt.passed,
            latency_ms: u64::try_from(attempt.latency.as_millis()).unwrap_or(u64::MAX),
            message: attempt.message,
            via: attempt.via,
        }
    }
}

/// Seconds from the metadata as a duration (negative counts as zero).
pub(crate) fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

/// Runs every check of `machines` once, each on its machine through ssh
/// (or from the controller, as the check says), at most `concurrency` at a
/// time; the reports come sorted by machine, then check.
pub async fn check_machines(
    machines: &[crate::metadata::Machine],
    ssh: crate::exec::SshOptions,
    concurrency: usize,
) -> Result<Vec<CheckResult>, crate::exec::ExecError> {
    let transport = crate::reach::transport(ssh)?;
    let probers: Vec<(crate::metadata::Machine, std::sync::Arc<dyn Prober>)> =
        crate::reach::reach(&transport, machines)?.into_iter().map(|r| (r.machine, r.prober as _)).collect();
    let reports = check_fleet_once(&probers, concurrency).await;
    transport.close().await;
    Ok(reports)
}
