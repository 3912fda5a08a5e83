//! Plans: the steps of a reboot or deploy run, wave by wave, with estimates.
//!
//! A plan is built from a [`Fleet`] and [`Limits`]; the orchestrator
//! executes it, `--dry-run` and `lab plan` show it.
//!
//! # Estimates
//!
//! Every step has an *estimate* (things go right the first time) and a
//! *worst case* (every wait runs to its limit). A machine's time is the sum
//! of its steps; a wave's is its slowest machine's (machines of a wave run
//! together); the plan's is the sum of its waves'.
//!
//! - wait: `rebootDelay`, both estimate and worst case.
//! - reboot: issuing it, counted as 0.
//! - wait for boot: [`ESTIMATED_BOOT_SECONDS`] capped at `rebootTimeout`;
//!   worst case `rebootTimeout`.
//! - health checks: the slowest required check's `initialDelay` plus
//!   `(successThreshold - 1) * interval` (checks run side by side, each
//!   attempt assumed instant), plus `minHealthyTime`; worst case
//!   `healthyDeadline + minHealthyTime`. No checks: 0.
//! - build, copy, activate, commit: the `ESTIMATED_*` constants below, with
//!   no known upper bound, so the worst case uses the same figure.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::graph::render::criticality_name;
use crate::graph::{Fleet, Limits};
use crate::metadata::{Criticality, DeployStrategy, Machine};

/// Seconds a NixOS machine typically needs from `reboot` to answering ssh.
pub const ESTIMATED_BOOT_SECONDS: u64 = 90;
/// Seconds to build a machine's system closure (typically mostly cached).
pub const ESTIMATED_BUILD_SECONDS: u64 = 120;
/// Seconds to copy a closure to the machine.
pub const ESTIMATED_COPY_SECONDS: u64 = 30;
/// Seconds to activate a configuration (`switch-to-configuration`).
pub const ESTIMATED_ACTIVATION_SECONDS: u64 = 30;
/// Seconds to make a tested blue-green configuration the boot default.
pub const ESTIMATED_COMMIT_SECONDS: u64 = 5;

/// What a run does to each machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanKind {
    /// Wait rebootDelay, reboot, wait for boot, health checks.
    Reboot,
    /// Build, copy, activate (per deployStrategy), health checks.
    Deploy,
}

/// One step on one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Find out whether the machine needs a reboot (`--only-if-needed`).
    CheckReboot,
    /// Wait before acting (rebootDelay).
    Wait,
    /// Issue the reboot.
    Reboot,
    /// Wait until the machine answers again.
    WaitForBoot,
    /// Run the health checks until they pass.
    HealthChecks,
    /// Build the system closure.
    Build,
    /// Copy the closure to the machine.
    Copy,
    /// Activate the new configuration.
    Activate,
    /// Make a tested configuration the boot default (blue-green).
    Commit,
}

impl Action {
    /// The action's name as in JSON and step ids: `wait-for-boot`, `activate`.
    pub fn name(self) -> &'static str {
        match self {
            Action::CheckReboot => "check-reboot",
            Action::Wait => "wait",
            Action::Reboot => "reboot",
            Action::WaitForBoot => "wait-for-boot",
            Action::HealthChecks => "health-checks",
            Action::Build => "build",
            Action::Copy => "copy",
            Action::Activate => "activate",
            Action::Commit => "commit",
        }
    }
}

impl PlanKind {
    /// The kind's name as in JSON and step ids.
    pub fn name(self) -> &'static str {
        match self {
            PlanKind::Reboot => "reboot",
            PlanKind::Deploy => "deploy",
        }
    }
}

/// The stable id of a step in journals and events: `deploy/web-1/activate`.
pub fn step_id(kind: PlanKind, machine: &str, action: Action) -> String {
    format!("{}/{machine}/{}", kind.name(), action.name())
}

/// What `switch-to-configuration` is asked to do at the end of a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Goal {
    /// Make it the running system and the boot default.
    #[default]
    Switch,
    /// Make it the boot default only; the running system does not change.
    Boot,
    /// Make it the running system only; the next boot forgets it.
    Test,
    /// Only show what activating it would change.
    DryActivate,
}

impl Goal {
    /// The goal as `switch-to-configuration` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Goal::Switch => "switch",
            Goal::Boot => "boot",
            Goal::Test => "test",
            Goal::DryActivate => "dry-activate",
        }
    }

    /// True when the goal changes the running system, so health checks
    /// (and a rollback watchdog) apply.
    pub fn changes_running_system(self) -> bool {
        matches!(self, Goal::Switch | Goal::Test)
    }

    /// True when the goal sets the system profile (the boot default).
    pub fn sets_profile(self) -> bool {
        matches!(self, Goal::Switch | Goal::Boot)
    }
}

/// How a run's steps are chosen beyond kind, fleet and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOptions {
    /// Deploy: the goal (default switch).
    #[serde(default)]
    pub goal: Goal,
    /// Deploy: build on each machine instead of on the controller.
    #[serde(default)]
    pub build_on_target: bool,
    /// Reboot: skip every rebootDelay.
    #[serde(default)]
    pub no_delay: bool,
    /// Reboot: only machines whose booted kernel, initrd or modules differ
    /// from their boot default.
    #[serde(default)]
    pub only_if_needed: bool,
}

impl PlanOptions {
    fn is_default(&self) -> bool {
        *self == PlanOptions::default()
    }
}

/// One step of a machine's part of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// What it does.
    pub action: Action,
    /// The step for people, with the setting behind its duration.
    pub description: String,
    /// Expected seconds.
    pub estimated_seconds: u64,
    /// Seconds when every wait runs to its limit.
    pub worst_case_seconds: u64,
}

/// One machine's steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachinePlan {
    /// The machine.
    pub machine: String,
    /// Where the steps run: `user@host:port`.
    pub target: String,
    /// Its criticalityLevel.
    pub criticality_level: Criticality,
    /// Its deployStrategy.
    pub deploy_strategy: DeployStrategy,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Sum of the steps' estimates.
    pub estimated_seconds: u64,
    /// Sum of the steps' worst cases.
    pub worst_case_seconds: u64,
}

/// Machines that run together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanWave {
    /// 1-based wave number.
    pub wave: usize,
    /// The machines, in priority order.
    pub machines: Vec<MachinePlan>,
    /// The slowest machine's estimate.
    pub estimated_seconds: u64,
    /// The slowest machine's worst case.
    pub worst_case_seconds: u64,
}

/// The ordered steps of a run, grouped by wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Reboot or deploy.
    pub kind: PlanKind,
    /// The options the steps were chosen with (omitted when all default).
    #[serde(default, skip_serializing_if = "PlanOptions::is_default")]
    pub options: PlanOptions,
    /// The limits the waves were cut under.
    pub limits: Limits,
    /// The waves, in the order they run.
    pub waves: Vec<PlanWave>,
    /// Sum of the waves' estimates.
    pub estimated_seconds: u64,
    /// Sum of the waves' worst cases.
    pub worst_case_seconds: u64,
}

impl Plan {
    /// The plan of a `kind` run over every machine of `fleet`, in its waves
    /// under `limits`.
    pub fn new(kind: PlanKind, fleet: &Fleet, limits: &Limits) -> Plan {
        Plan::with_options(kind, fleet, limits, &PlanOptions::default())
    }

    /// The plan of a `kind` run chosen with `options`.
    pub fn with_options(kind: PlanKind, fleet: &Fleet, limits: &Limits, options: &PlanOptions) -> Plan {
        let waves = match kind {
            PlanKind::Deploy => fleet.deploy_waves(limits),
            PlanKind::Reboot => fleet.waves(limits),
        };
        let waves: Vec<PlanWave> = waves
            .into_iter()
            .enumerate()
            .map(|(w, machines)| {
                let machines: Vec<MachinePlan> = machines.into_iter().map(|m| machine_plan(kind, options, m)).collect();
                PlanWave {
                    wave: w + 1,
                    estimated_seconds: machines.iter().map(|m| m.estimated_seconds).max().unwrap_or(0),
                    worst_case_seconds: machines.iter().map(|m| m.worst_case_seconds).max().unwrap_or(0),
                    machines,
                }
            })
            .collect();
        Plan {
            kind,
            options: *options,
            limits: *limits,
            estimated_seconds: total(waves.iter().map(|w| w.estimated_seconds)),
            worst_case_seconds: total(waves.iter().map(|w| w.worst_case_seconds)),
            waves,
        }
    }

    /// Every machine of the plan with its wave index (0-based), in order.
    pub fn machines(&self) -> impl Iterator<Item = (usize, &MachinePlan)> {
        self.waves.iter().enumerate().flat_map(|(w, wave)| wave.machines.iter().map(move |m| (w, m)))
    }

    /// Number of machines in the plan.
    pub fn machine_count(&self) -> usize {
        self.waves.iter().map(|w| w.machines.len()).sum()
    }

    /// Machines of a deploy plan that do not count towards `max_parallel`:
    /// those deployed with `recreate`, all of a wave at once (see
    /// [`Fleet::deploy_waves`]). Always 0 for a reboot plan.
    pub fn uncounted_machines(&self) -> usize {
        match self.kind {
            PlanKind::Reboot => 0,
            PlanKind::Deploy => self.machines().filter(|(_, m)| m.deploy_strategy == DeployStrategy::Recreate).count(),
        }
    }

    /// The limits the waves really hold to, for the header: `max parallel
    /// 2, recreate machines not counted (3 here), at most 1 per group`.
    fn limits_text(&self) -> String {
        let mut text = format!("max parallel {}", self.limits.max_parallel);
        let uncounted = self.uncounted_machines();
        if uncounted > 0 {
            text.push_str(&format!(", recreate machines not counted ({uncounted} here)"));
        }
        if let Some(g) = self.limits.max_unavailable_per_group {
            text.push_str(&format!(", at most {g} per group"));
        }
        text
    }

    /// The plan as text: a summary line with the total estimate, then each
    /// wave, each machine with its target, and its numbered steps.
    pub fn render_text(&self) -> String {
        let kind = match self.kind {
            PlanKind::Reboot => "Reboot",
            PlanKind::Deploy => "Deploy",
        };
        let mut out = format!(
            "{kind} plan: {} in {} ({})\n",
            count(self.machine_count(), "machine"),
            count(self.waves.len(), "wave"),
            self.limits_text(),
        );
        let _ = writeln!(
            out,
            "Estimated duration: {} (worst case {})",
            format_duration(self.estimated_seconds),
            format_duration(self.worst_case_seconds)
        );
        let width = self.waves.iter().flat_map(|w| &w.machines).flat_map(|m| &m.steps);
        let width = width.map(|s| s.description.chars().count()).max().unwrap_or(0);
        for wave in &self.waves {
            let _ = writeln!(
                out,
                "\nwave {}: estimated {}, worst case {}",
                wave.wave,
                format_duration(wave.estimated_seconds),
                format_duration(wave.worst_case_seconds)
            );
            for m in &wave.machines {
                let _ = writeln!(
                    out,
                    "  {} {} ({}, {}): estimated {}",
                    crate::printable::printable(&m.machine),
                    crate::printable::printable(&m.target),
                    criticality_name(m.criticality_level),
                    strategy_name(m.deploy_strategy),
                    format_duration(m.estimated_seconds)
                );
                for (n, s) in m.steps.iter().enumerate() {
                    let worst = match (s.worst_case_seconds == s.estimated_seconds, worst_case_from(s.action)) {
                        (false, Some(from)) => format!("  (up to {}: {from})", format_duration(s.worst_case_seconds)),
                        (false, None) => format!("  (up to {})", format_duration(s.worst_case_seconds)),
                        (true, _) => String::new(),
                    };
                    let line = format!(
                        "    {}. {:width$}  {:>10}{worst}",
                        n + 1,
                        s.description,
                        format_duration(s.estimated_seconds)
                    );
                    let _ = writeln!(out, "{}", line.trim_end());
                }
            }
        }
        out
    }
}

/// The settings a step's worst case comes from, for the text.
fn worst_case_from(action: Action) -> Option<&'static str> {
    match action {
        Action::WaitForBoot => Some("rebootTimeout"),
        Action::HealthChecks => Some("healthyDeadline + minHealthyTime"),
        _ => None,
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn strategy_name(s: DeployStrategy) -> &'static str {
    match s {
        DeployStrategy::Rolling => "rolling",
        DeployStrategy::BlueGreen => "blue-green",
        DeployStrategy::Recreate => "recreate",
    }
}

/// `user@host:port`, the host bracketed when it is an IPv6 address.
pub fn target(machine: &Machine) -> String {
    let host = machine.target_host();
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    format!("{}@{host}:{}", machine.metadata.target_user, machine.metadata.target_port)
}

/// Seconds as `45s`, `2m 05s` or `1h 02m 03s`.
pub fn format_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// A sum that stops at `u64::MAX`: settings are the user's numbers, and an
/// absurd one must give an absurd estimate, not an overflow.
fn total(seconds: impl Iterator<Item = u64>) -> u64 {
    seconds.fold(0, u64::saturating_add)
}

/// Negative settings are a validation error elsewhere; here they count as 0.
fn secs(value: i64) -> u64 {
    value.max(0) as u64
}

fn step(action: Action, description: String, estimated: u64, worst: u64) -> Step {
    Step { action, description, estimated_seconds: estimated, worst_case_seconds: worst }
}

fn fixed(action: Action, description: &str, seconds: u64) -> Step {
    step(action, description.to_string(), seconds, seconds)
}

fn machine_plan(kind: PlanKind, options: &PlanOptions, m: &Machine) -> MachinePlan {
    let o = &m.metadata.orchestration;
    let steps = match kind {
        PlanKind::Reboot => {
            let mut steps = Vec::new();
            if options.only_if_needed {
                steps.push(fixed(Action::CheckReboot, "check whether a reboot is needed", 0));
            }
            if options.no_delay {
                steps.push(fixed(Action::Wait, "wait rebootDelay (skipped: --no-delay)", 0));
            } else {
                steps.push(fixed(Action::Wait, "wait rebootDelay", secs(o.reboot_delay)));
            }
            steps.push(fixed(Action::Reboot, "reboot", 0));
            steps.push(step(
                Action::WaitForBoot,
                "wait for boot".into(),
                ESTIMATED_BOOT_SECONDS.min(secs(o.reboot_timeout)),
                secs(o.reboot_timeout),
            ));
            steps.push(health_step(m));
            steps
        }
        PlanKind::Deploy => deploy_steps(options, m),
    };
    MachinePlan {
        machine: m.name.clone(),
        target: target(m),
        criticality_level: o.criticality_level,
        deploy_strategy: o.deploy_strategy,
        estimated_seconds: total(steps.iter().map(|s| s.estimated_seconds)),
        worst_case_seconds: total(steps.iter().map(|s| s.worst_case_seconds)),
        steps,
    }
}

fn deploy_steps(options: &PlanOptions, m: &Machine) -> Vec<Step> {
    let strategy = m.metadata.orchestration.deploy_strategy;
    let goal = options.goal;
    let mut steps = if options.build_on_target {
        vec![fixed(Action::Build, "copy the derivation and build on the machine", ESTIMATED_BUILD_SECONDS)]
    } else {
        vec![
            fixed(Action::Build, "build system closure", ESTIMATED_BUILD_SECONDS),
            fixed(Action::Copy, "copy closure", ESTIMATED_COPY_SECONDS),
        ]
    };
    let activate = match (goal, strategy) {
        (Goal::Switch, DeployStrategy::Rolling) => "activate (switch)",
        (Goal::Switch, DeployStrategy::Recreate) => "activate (switch, all of the wave at once)",
        (Goal::Switch | Goal::Test, DeployStrategy::BlueGreen) => "activate for testing (test)",
        (Goal::Test, _) => "activate (test)",
        (Goal::Boot, _) => "make it the boot default (boot)",
        (Goal::DryActivate, _) => "show what activation would change (dry-activate)",
    };
    steps.push(fixed(Action::Activate, activate, ESTIMATED_ACTIVATION_SECONDS));
    if goal.changes_running_system() {
        steps.push(health_step(m));
    }
    if goal == Goal::Switch && strategy == DeployStrategy::BlueGreen {
        steps.push(fixed(Action::Commit, "make it the boot default (boot)", ESTIMATED_COMMIT_SECONDS));
    }
    steps
}

fn health_step(m: &Machine) -> Step {
    let o = &m.metadata.orchestration;
    let checks = &m.metadata.health_checks;
    if checks.is_empty() {
        return fixed(Action::HealthChecks, "health checks (none declared)", 0);
    }
    let slowest = checks
        .iter()
        .filter(|c| c.common().required)
        .map(|c| {
            let c = c.common();
            secs(c.initial_delay)
                .saturating_add(secs(c.success_threshold.saturating_sub(1)).saturating_mul(secs(c.interval)))
        })
        .max()
        .unwrap_or(0);
    let worst = secs(o.healthy_deadline).saturating_add(secs(o.min_healthy_time));
    step(
        Action::HealthChecks,
        format!("health checks ({})", checks.len()),
        slowest.saturating_add(secs(o.min_healthy_time)).min(worst),
        worst,
    )
}
