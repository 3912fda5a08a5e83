//! Polling: thresholds, the healthy-for-a-while rule, deadlines, and
//! bounded fan-out over many machines.
//!
//! All time goes through tokio's clock, so tests drive it with
//! `tokio::time::pause()`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::{seconds, Attempt, CheckResult, Prober, Via};
use crate::exec::human_duration;
use crate::metadata::{CheckCommon, HealthCheck, Machine};

/// Checks attempted at once by [`check_fleet_once`] unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Shortest pause between attempts of one check, whatever its `interval`:
/// a check failing instantly (closed port) must not spin.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Safety bound on one attempt on top of its timeout; probers bound
/// themselves, this catches one that does not.
const ATTEMPT_GRACE: Duration = Duration::from_secs(30);

/// Where a polled check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckState {
    /// Not yet `successThreshold` consecutive passes.
    Pending,
    /// Passed; fewer than `failureThreshold` consecutive failures since.
    Passing,
    /// Had passed, then failed `failureThreshold` times in a row.
    Failing,
}

/// The threshold rules of one check, fed one attempt at a time.
#[derive(Debug, Clone)]
pub struct Tracker {
    state: CheckState,
    passes: i64,
    failures: i64,
    success_threshold: i64,
    failure_threshold: i64,
    last: Option<Attempt>,
    last_failure: Option<Attempt>,
}

impl Tracker {
    /// A tracker with the thresholds of `common` (values below 1 count as 1).
    pub fn new(common: &CheckCommon) -> Self {
        Tracker {
            state: CheckState::Pending,
            passes: 0,
            failures: 0,
            success_threshold: common.success_threshold.max(1),
            failure_threshold: common.failure_threshold.max(1),
            last: None,
            last_failure: None,
        }
    }

    /// Records an attempt and returns the new state. A check passes after
    /// `successThreshold` consecutive passes; once passing, it fails after
    /// `failureThreshold` consecutive failures; a failing check passes
    /// again after `successThreshold` consecutive passes.
    pub fn record(&mut self, attempt: Attempt) -> CheckState {
        if attempt.passed {
            self.passes += 1;
            self.failures = 0;
            if self.state != CheckState::Passing && self.passes >= self.success_threshold {
                self.state = CheckState::Passing;
            }
        } else {
            self.failures += 1;
            self.passes = 0;
            if self.state == CheckState::Passing && self.failures >= self.failure_threshold {
                self.state = CheckState::Failing;
            }
            self.last_failure = Some(attempt.clone());
        }
        self.last = Some(attempt);
        self.state
    }

    /// The current state.
    pub fn state(&self) -> CheckState {
        self.state
    }

    /// The last attempt, if any finished.
    pub fn last(&self) -> Option<&Attempt> {
        self.last.as_ref()
    }
}

/// A polled check at the end of [`wait_healthy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStatus {
    /// Position in the machine's `healthChecks`.
    pub index: usize,
    /// The check's label.
    pub check: String,
    /// Whether it blocks.
    pub required: bool,
    /// Where it stands.
    pub state: CheckState,
    /// Its last attempt.
    pub last: Option<Attempt>,
}

/// A machine found healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    /// The machine.
    pub machine: String,
    /// Every check, required or not, as it stood.
    pub checks: Vec<CheckStatus>,
}

/// A required check that did not hold by the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnhealthyCheck {
    /// The check's label.
    pub check: String,
    /// Where it stood.
    pub state: CheckState,
    /// Its last failure, or why there was none.
    pub message: String,
}

/// A machine not healthy by its deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "camelCase")]
#[error("{machine} was not healthy by the deadline: {}", describe(failures))]
pub struct Unhealthy {
    /// The machine.
    pub machine: String,
    /// Each required check that was not passing, with its last failure.
    pub failures: Vec<UnhealthyCheck>,
}

fn describe(failures: &[UnhealthyCheck]) -> String {
    failures.iter().map(|f| format!("{} ({:?}): {}", f.check, f.state, f.message)).collect::<Vec<_>>().join("; ")
}

/// One attempt, bounded even when the prober is not.
async fn bounded_attempt(prober: &dyn Prober, check: &HealthCheck) -> Attempt {
    let bound = seconds(check.common().timeout) + ATTEMPT_GRACE;
    let start = Instant::now();
    match tokio::time::timeout(bound, prober.probe(check)).await {
        Ok(attempt) => attempt,
        Err(_) => {
            Attempt::failed(format!("no answer within {}", human_duration(bound)), start.elapsed(), Via::Controller)
        }
    }
}

/// Polls `checks` of `machine` until every required check passes and keeps
/// passing for `min_healthy_time` (then `Ok` at once), or fails at
/// `deadline` with the last failure of each required check not passing.
/// Checks that are not required are polled and reported but never block.
/// A machine without required checks is healthy at once.
pub async fn wait_healthy(
    prober: &dyn Prober,
    machine: &str,
    checks: &[HealthCheck],
    min_healthy_time: Duration,
    deadline: Instant,
) -> Result<Healthy, Unhealthy> {
    let trackers = Mutex::new(checks.iter().map(|c| Tracker::new(c.common())).collect::<Vec<_>>());
    let changed = Notify::new();
    let required: Vec<usize> = (0..checks.len()).filter(|&i| checks[i].common().required).collect();
    let snapshot = |trackers: &[Tracker]| Healthy {
        machine: machine.to_string(),
        checks: checks
            .iter()
            .zip(trackers)
            .enumerate()
            .map(|(index, (check, t))| CheckStatus {
                index,
                check: check.label(),
                required: check.common().required,
                state: t.state(),
                last: t.last().cloned(),
            })
            .collect(),
    };
    if required.is_empty() {
        return Ok(snapshot(&trackers.lock().unwrap_or_else(PoisonError::into_inner)));
    }

    let pollers = checks.iter().enumerate().map(|(i, check)| {
        let (trackers, changed) = (&trackers, &changed);
        async move {
            tokio::time::sleep(seconds(check.common().initial_delay)).await;
            let interval = seconds(check.common().interval).max(MIN_INTERVAL);
            loop {
                let started = Instant::now();
                let attempt = bounded_attempt(prober, check).await;
                trackers.lock().unwrap_or_else(PoisonError::into_inner)[i].record(attempt);
                changed.notify_one();
                // `sleep`, not `sleep_until(started + interval)`: an absurd
                // interval must wait forever, not overflow the clock.
                tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
            }
        }
    });
    let pollers = join_all(pollers);

    let watcher = async {
        let mut healthy_since: Option<Instant> = None;
        loop {
            let all_pass = {
                let t = trackers.lock().unwrap_or_else(PoisonError::into_inner);
                required.iter().all(|&i| t[i].state() == CheckState::Passing)
            };
            let now = Instant::now();
            let wake = if all_pass {
                let since = *healthy_since.get_or_insert(now);
                if now - since >= min_healthy_time {
                    return;
                }
                Some(since.checked_add(min_healthy_time).unwrap_or(deadline))
            } else {
                healthy_since = None;
                None
            };
            match wake {
                Some(wake) => tokio::select! {
                    () = changed.notified() => {}
                    () = tokio::time::sleep_until(wake) => {}
                },
                None => changed.notified().await,
            }
        }
    };

    tokio::select! {
        _ = pollers => unreachable!("pollers loop until cancelled"),
        () = watcher => Ok(snapshot(&trackers.lock().unwrap_or_else(PoisonError::into_inner))),
        () = tokio::time::sleep_until(deadline) => {
            let t = trackers.lock().unwrap_or_else(PoisonError::into_inner);
            let failures = required
                .iter()
                .filter(|&&i| t[i].state() != CheckState::Passing)
                .map(|&i| UnhealthyCheck {
                    check: checks[i].label(),
                    state: t[i].state(),
                    message: match (&t[i].last_failure, &t[i].last) {
                        (Some(failure), _) => failure.message.clone(),
                        (None, Some(_)) => "passing, but not yet successThreshold times in a row".into(),
                        (None, None) => "no attempt finished before the deadline".into(),
                    },
                })
                .collect();
            Err(Unhealthy { machine: machine.to_string(), failures })
        }
    }
}

/// Runs every check of `machine` once, concurrently; reports in check order.
pub async fn check_once(prober: &dyn Prober, machine: &str, checks: &[HealthCheck]) -> Vec<CheckResult> {
    let attempts = checks.iter().map(|check| bounded_attempt(prober, check));
    join_all(attempts)
        .await
        .into_iter()
        .zip(checks)
        .enumerate()
        .map(|(index, (attempt, check))| CheckResult::new(machine, index, check, attempt))
        .collect()
}

/// Runs every check of every machine once, at most `concurrency` attempts
/// at a time; reports sorted by machine, then check order.
pub async fn check_fleet_once(machines: &[(Machine, Arc<dyn Prober>)], concurrency: usize) -> Vec<CheckResult> {
    let permits = Semaphore::new(concurrency.max(1));
    let jobs = machines.iter().flat_map(|(machine, prober)| {
        machine.metadata.health_checks.iter().enumerate().map(move |(index, check)| (machine, prober, index, check))
    });
    let runs = jobs.map(|(machine, prober, index, check)| {
        let permits = &permits;
        async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire().await.ok();
            let attempt = bounded_attempt(prober.as_ref(), check).await;
            CheckResult::new(&machine.name, index, check, attempt)
        }
    });
    let mut reports = join_all(runs).await;
    reports.sort_by(|a, b| (&a.machine, a.index).cmp(&(&b.machine, b.index)));
    reports
}

#[cfg(test)]
mod tests;
