//! `lab status`: where each machine stands, gathered concurrently — is it
//! reachable, healthy, running the system its configuration evaluates to,
//! does it need a reboot, how long has it been up, and how did the last
//! orchestration run end for it; with what the fleet says of it (role,
//! groups, criticality), each health check's result, and when it was last
//! deployed and rebooted successfully (from the journals). Text a machine
//! or a check returns has its credentials redacted: a status is shown on
//! pages and in metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::exec::{Cmd, Executor};
use crate::health::{check_once, CheckResult, Prober};
use crate::metadata::{Criticality, Machine};
use crate::orchestrate::HookEvent;
use crate::reach::Reached;
use crate::redact::redact_text;
use crate::remote::{Escalation, Remote};
use crate::store::history::History;

const QUICK: Duration = Duration::from_secs(15);

/// How long `lab status` waits for a machine's first answer before it
/// calls it unreachable.
pub const ANSWER_WITHIN: Duration = QUICK;

/// Whether a machine runs the system its configuration evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// /run/current-system is the evaluated system.
    UpToDate,
    /// It runs something else: deploy (and maybe reboot) it.
    Outdated,
    /// Not known: unreachable, or the fleet's systems were not evaluated.
    Unknown,
}

/// The last orchestration step a run recorded for a machine: what the
/// journals' [`History`] keeps for it.
pub use crate::store::history::LastStep as LastRun;

/// One machine's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineStatus {
    /// The machine.
    pub machine: String,
    /// It answered over ssh.
    pub reachable: bool,
    /// Why it did not, or what else went wrong reading it.
    pub error: Option<String>,
    /// Every required check passed (`None` when unreachable).
    pub healthy: Option<bool>,
    /// The required checks that failed, with their messages.
    pub failing: Vec<String>,
    /// Where /run/current-system points.
    pub current_system: Option<String>,
    /// The system its configuration evaluates to, when known.
    pub expected_system: Option<String>,
    /// Up to date, outdated or unknown.
    pub generation: Generation,
    /// Why it needs a reboot (booted kernel, initrd or modules differ from
    /// its boot default), `Some("")` never; `None` when it does not or it is unknown.
    pub needs_reboot: Option<String>,
    /// Seconds since it booted.
    pub uptime_seconds: Option<u64>,
    /// How the last orchestration run ended for it.
    pub last_run: Option<LastRun>,
    /// Its role (`lab.machine.role`).
    pub role: String,
    /// Its groups (`lab.machine.groups`).
    pub groups: Vec<String>,
    /// Its criticality (`orchestration.criticalityLevel`).
    pub criticality: Criticality,
    /// Every health check's result, in the machine's order (none when unreachable).
    pub checks: Vec<CheckResult>,
    /// When its last successful deploy ended, milliseconds since the Unix
    /// epoch, from the journals (see [`History`]); `None` when none did.
    pub last_deploy_ms: Option<u64>,
    /// When its last successful reboot by lab ended, milliseconds since the
    /// Unix epoch, from the journals; `None` when none did.
    pub last_reboot_ms: Option<u64>,
}

impl MachineStatus {
    /// True when it is reachable, healthy and not known to be outdated.
    pub fn is_ok(&self) -> bool {
        self.reachable && self.healthy == Some(true) && self.generation != Generation::Outdated
    }

    /// What `lab status --alert` tells the notification hooks about this
    /// machine: unreachable, or reachable and failing required checks;
    /// `None` when it is neither.
    pub fn alert(&self) -> Option<HookEvent> {
        let (machine, failing, error) = (self.machine.clone(), self.failing.clone(), self.error.clone());
        match (self.reachable, self.healthy) {
            (false, _) => Some(HookEvent::MachineUnreachable { machine, failing, error }),
            (true, Some(false)) => Some(HookEvent::MachineUnhealthy { machine, failing, error }),
            _ => None,
        }
    }
}

/// Reads one machine's status through `exec` (checks through `prober`); a
/// machine that does not answer within `answer_within` is unreachable.
pub async fn machine_status(
    machine: &Machine,
    exec: &dyn Executor,
    prober: &dyn Prober,
    expected: Option<&str>,
    last_run: Option<LastRun>,
    answer_within: Duration,
) -> MachineStatus {
    let mut status = MachineStatus {
        machine: machine.name.clone(),
        reachable: false,
        error: None,
        healthy: None,
        failing: Vec::new(),
        current_system: None,
        expected_system: expected.map(str::to_string),
        generation: Generation::Unknown,
        needs_reboot: None,
        uptime_seconds: None,
        last_run,
        role: machine.metadata.role.clone(),
        groups: machine.metadata.groups.clone(),
        criticality: machine.metadata.orchestration.criticality_level,
        checks: Vec::new(),
        last_deploy_ms: None,
        last_reboot_ms: None,
    };
    // The first command says whether it answers at all: bounded by what the
    // caller can wait (lab serve: its probe interval), not by the slowest
    // network, so one machine cut off does not hold up the fleet's status.
    let uptime = match exec.run_ok(&Cmd::new(["cat", "/proc/uptime"]).timeout(answer_within)).await {
        Ok(out) => out,
        Err(e) => {
            status.error = Some(redact_text(&e.to_string()));
            return status;
        }
    };
    status.reachable = true;
    status.uptime_seconds =
        uptime.stdout_text().split_whitespace().next().and_then(|s| s.parse::<f64>().ok()).map(|s| s as u64);
    // Only reads follow, none of them privileged.
    let escalation = Escalation::default();
    let remote = Remote { exec, user: &machine.metadata.target_user, escalation: &escalation };
    match remote.current_system().await {
        Ok(current) if !current.is_empty() => {
            status.generation = match expected {
                Some(expected) if expected == current => Generation::UpToDate,
                Some(_) => Generation::Outdated,
                None => Generation::Unknown,
            };
            status.current_system = Some(current);
        }
        Ok(_) => {}
        Err(e) => status.error = Some(redact_text(&e.to_string())),
    }
    match remote.needs_reboot().await {
        Ok(reason) => status.needs_reboot = reason,
        Err(e) => status.error = status.error.or(Some(redact_text(&e.to_string()))),
    }
    let mut reports = check_once(prober, &machine.name, &machine.metadata.health_checks).await;
    for report in &mut reports {
        report.check = redact_text(&report.check);
        report.message = redact_text(&report.message);
    }
    status.failing = reports.iter().filter(|r| r.failed()).map(|r| format!("{}: {}", r.check, r.message)).collect();
    status.healthy = Some(status.failing.is_empty());
    status.checks = reports;
    status
}

/// Fills in each status's last successful deploy and reboot from `history`.
pub fn apply_history(statuses: &mut [MachineStatus], history: &History) {
    for status in statuses {
        if let Some(h) = history.machines.get(&status.machine) {
            status.last_deploy_ms = h.last_deploy_ms;
            status.last_reboot_ms = h.last_reboot_ms;
        }
    }
}

/// `evaluated` (each machine's system, evaluated at `evaluated_at_ms`)
/// with the systems of the runs started since then in its place: such a
/// run evaluated the configuration later, so a watcher that evaluated once
/// (`lab serve`, `lab status --watch`) sees a machine just deployed as up
/// to date, not as running something else.
pub fn expected_now(
    evaluated: &BTreeMap<String, String>,
    evaluated_at_ms: u64,
    history: &History,
) -> BTreeMap<String, String> {
    let mut expected = evaluated.clone();
    for (machine, (time, system)) in &history.systems {
        if *time >= evaluated_at_ms {
            expected.insert(machine.clone(), system.clone());
        }
    }
    expected
}

/// The status of every machine of `machines` (see [`fleet_status`]), with
/// its last run and last successful deploy and reboot from `history` (the
/// journals, see [`History::read`]): what `lab status` and `lab serve`
/// show. `expected` holds the systems evaluated at `evaluated_at_ms` (see
/// [`expected_now`]).
pub async fn probe(
    machines: &[Reached],
    expected: &BTreeMap<String, String>,
    evaluated_at_ms: u64,
    history: &History,
    concurrency: usize,
    answer_within: Duration,
) -> Vec<MachineStatus> {
    let expected = expected_now(expected, evaluated_at_ms, history);
    let last: BTreeMap<String, LastRun> =
        history.machines.iter().filter_map(|(name, h)| Some((name.clone(), h.last_step.clone()?))).collect();
    let mut statuses = fleet_status(machines, &expected, &last, concurrency, answer_within).await;
    apply_history(&mut statuses, history);
    statuses
}

/// The status of every machine of `machines`, at most `concurrency` at once,
/// sorted by machine.
pub async fn fleet_status(
    machines: &[Reached],
    expected: &BTreeMap<String, String>,
    last: &BTreeMap<String, LastRun>,
    concurrency: usize,
    answer_within: Duration,
) -> Vec<MachineStatus> {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let tasks = machines.iter().map(|Reached { machine, executor: exec, prober }| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            let expected = expected.get(&machine.name).map(String::as_str);
            machine_status(
                machine,
                exec.as_ref(),
                prober.as_ref() as &dyn Prober,
                expected,
                last.get(&machine.name).cloned(),
                answer_within,
            )
            .await
        }
    });
    let mut statuses = futures_util::future::join_all(tasks).await;
    statuses.sort_by(|a, b| a.machine.cmp(&b.machine));
    statuses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reachable: bool, healthy: Option<bool>) -> MachineStatus {
        MachineStatus {
            machine: "web".into(),
            reachable,
            error: (!reachable).then(|| "ssh: timeout".to_string()),
            healthy,
            failing: if healthy == Some(false) { vec!["http: 503".into()] } else { vec![] },
            current_system: None,
            expected_system: None,
            generation: Generation::Unknown,
            needs_reboot: None,
            uptime_seconds: None,
            last_run: None,
            role: String::new(),
            groups: vec![],
            criticality: Criticality::Medium,
            checks: vec![],
            last_deploy_ms: None,
            last_reboot_ms: None,
        }
    }

    #[test]
    fn runs_started_after_the_evaluation_name_the_expected_system() {
        let mut history = History::default();
        history.systems.insert("web".into(), (200, "/nix/store/new".into()));
        history.systems.insert("db".into(), (50, "/nix/store/older-run".into()));
        let evaluated =
            BTreeMap::from([("web".to_string(), "/nix/store/old".to_string()), ("db".into(), "/nix/store/db".into())]);
        let now = expected_now(&evaluated, 100, &history);
        assert_eq!(now["web"], "/nix/store/new", "deployed after the evaluation");
        assert_eq!(now["db"], "/nix/store/db", "a run before the evaluation does not count");
    }

    #[test]
    fn alerts_are_the_json_hooks_always_received() {
        assert_eq!(status(true, Some(true)).alert(), None);
        assert_eq!(status(true, None).alert(), None);
        assert_eq!(
            status(true, Some(false)).alert().unwrap().to_json(),
            serde_json::json!({"event": "machine-unhealthy", "machine": "web", "failing": ["http: 503"], "error": null})
        );
        assert_eq!(
            status(false, None).alert().unwrap().to_json(),
            serde_json::json!({"event": "machine-unreachable", "machine": "web", "failing": [], "error": "ssh: timeout"})
        );
    }
}
