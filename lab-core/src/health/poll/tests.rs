//! Polling rules under a paused clock, with scripted attempts.

use std::collections::HashMap;

use async_trait::async_trait;

use super::*;

/// Answers each check (by label) from a script of pass/fail steps; the last
/// step repeats. `None` hangs forever.
struct Script {
    steps: Mutex<HashMap<String, Vec<Option<bool>>>>,
    start: Instant,
    seen: Mutex<Vec<(String, Duration)>>,
}

impl Script {
    fn new(steps: &[(&str, &[Option<bool>])]) -> Self {
        Script {
            steps: Mutex::new(steps.iter().map(|(k, v)| (format!("command {k}"), v.to_vec())).collect()),
            start: Instant::now(),
            seen: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Prober for Script {
    async fn probe(&self, check: &HealthCheck) -> Attempt {
        let label = check.label();
        self.seen.lock().unwrap().push((label.clone(), self.start.elapsed()));
        let step = {
            let mut steps = self.steps.lock().unwrap();
            let script = steps.get_mut(&label).unwrap();
            if script.len() > 1 {
                script.remove(0)
            } else {
                script[0]
            }
        };
        match step {
            Some(passed) => Attempt {
                passed,
                latency: Duration::ZERO,
                message: if passed { "ok".into() } else { format!("{label} failed") },
                via: Via::Controller,
            },
            None => std::future::pending().await,
        }
    }
}

fn check(name: &str, f: impl FnOnce(&mut CheckCommon)) -> HealthCheck {
    let mut common = CheckCommon { interval: 1, timeout: 1, failure_threshold: 1, ..CheckCommon::default() };
    f(&mut common);
    HealthCheck::Command { command: name.into(), common }
}

const P: Option<bool> = Some(true);
const F: Option<bool> = Some(false);

fn pass() -> Attempt {
    Attempt { passed: true, latency: Duration::ZERO, message: String::new(), via: Via::Controller }
}
fn fail() -> Attempt {
    Attempt { passed: false, ..pass() }
}

#[test]
fn tracker_thresholds() {
    let common = CheckCommon { success_threshold: 2, failure_threshold: 3, ..CheckCommon::default() };
    let mut t = Tracker::new(&common);
    assert_eq!(t.record(fail()), CheckState::Pending);
    assert_eq!(t.record(pass()), CheckState::Pending);
    assert_eq!(t.record(pass()), CheckState::Passing);
    assert_eq!(t.record(fail()), CheckState::Passing);
    assert_eq!(t.record(fail()), CheckState::Passing);
    assert_eq!(t.record(pass()), CheckState::Passing, "a pass resets the failure count");
    assert_eq!(t.record(fail()), CheckState::Passing);
    assert_eq!(t.record(fail()), CheckState::Passing);
    assert_eq!(t.record(fail()), CheckState::Failing);
    assert_eq!(t.record(pass()), CheckState::Failing);
    assert_eq!(t.record(pass()), CheckState::Passing, "recovers after successThreshold passes");
}

#[tokio::test(start_paused = true)]
async fn healthy_after_recovery_and_min_healthy_time() {
    let script = Script::new(&[("a", &[F, F, P])]);
    let start = Instant::now();
    let checks = [check("a", |_| {})];
    let healthy =
        wait_healthy(&script, "m", &checks, Duration::from_secs(3), start + Duration::from_secs(60)).await.unwrap();
    // Fails at 0 s and 1 s, passes from 2 s, healthy 3 s later.
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(healthy.checks[0].state, CheckState::Passing);
}

#[tokio::test(start_paused = true)]
async fn a_flap_restarts_min_healthy_time() {
    let script = Script::new(&[("a", &[P, F, P])]);
    let start = Instant::now();
    let checks = [check("a", |_| {})];
    wait_healthy(&script, "m", &checks, Duration::from_secs(2), start + Duration::from_secs(60)).await.unwrap();
    // Passing at 0 s, failing at 1 s (failureThreshold 1), passing again from 2 s.
    assert_eq!(start.elapsed(), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn failure_threshold_tolerates_single_failures() {
    let script = Script::new(&[("a", &[P, F, F, P])]);
    let start = Instant::now();
    let checks = [check("a", |c| c.failure_threshold = 3)];
    wait_healthy(&script, "m", &checks, Duration::from_secs(3), start + Duration::from_secs(60)).await.unwrap();
    // Two failures under a threshold of 3 do not interrupt the healthy time.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn success_threshold_needs_consecutive_passes() {
    let script = Script::new(&[("a", &[P, F, P, P, P])]);
    let start = Instant::now();
    let checks = [check("a", |c| c.success_threshold = 3)];
    wait_healthy(&script, "m", &checks, Duration::ZERO, start + Duration::from_secs(60)).await.unwrap();
    // Passes at 2, 3, 4 s: the third consecutive one counts.
    assert_eq!(start.elapsed(), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn deadline_reports_last_failure_of_each_required_check() {
    let script = Script::new(&[("a", &[F]), ("b", &[P]), ("c", &[F]), ("d", &[P, F])]);
    let start = Instant::now();
    let checks = [
        check("a", |_| {}),
        check("b", |_| {}),
        check("c", |c| c.required = false),
        check("d", |c| c.success_threshold = 2),
    ];
    let err = wait_healthy(&script, "m", &checks, Duration::ZERO, start + Duration::from_secs(10)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(err.machine, "m");
    let failed: Vec<(&str, &str)> = err.failures.iter().map(|f| (f.check.as_str(), f.message.as_str())).collect();
    assert_eq!(failed, [("command a", "command a failed"), ("command d", "command d failed")]);
    assert!(err.to_string().starts_with("m was not healthy by the deadline: command a (Pending): command a failed"));
}

#[tokio::test(start_paused = true)]
async fn optional_checks_never_block_and_no_required_checks_is_healthy_at_once() {
    let script = Script::new(&[("a", &[P]), ("b", &[F])]);
    let start = Instant::now();
    let checks = [check("a", |_| {}), check("b", |c| c.required = false)];
    let healthy = wait_healthy(&script, "m", &checks, Duration::ZERO, start + Duration::from_secs(10)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(healthy.checks.len(), 2);
    let only_optional = [check("b", |c| c.required = false)];
    wait_healthy(&script, "m", &only_optional, Duration::from_secs(5), start + Duration::from_secs(10)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn initial_delay_and_interval_space_the_attempts() {
    let script = Script::new(&[("a", &[F])]);
    let start = Instant::now();
    let checks = [check("a", |c| {
        c.initial_delay = 5;
        c.interval = 2;
    })];
    wait_healthy(&script, "m", &checks, Duration::ZERO, start + Duration::from_secs(10)).await.unwrap_err();
    let times: Vec<u64> = script.seen.lock().unwrap().iter().map(|(_, t)| t.as_secs()).collect();
    assert_eq!(times, [5, 7, 9]);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_is_bounded() {
    let script = Script::new(&[("a", &[None])]);
    let start = Instant::now();
    let checks = [check("a", |_| {})];
    let err = wait_healthy(&script, "m", &checks, Duration::ZERO, start + Duration::from_secs(40)).await.unwrap_err();
    assert_eq!(err.failures[0].message, "no answer within 31 s");
    // Attempts at 0 s and 31 s (the bound), then the deadline.
    assert_eq!(script.seen.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn fleet_once_is_bounded_and_sorted() {
    struct Counting {
        running: Mutex<(usize, usize)>,
    }
    #[async_trait]
    impl Prober for Counting {
        async fn probe(&self, _: &HealthCheck) -> Attempt {
            {
                let mut r = self.running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.running.lock().unwrap().0 -= 1;
            pass()
        }
    }
    let prober = Arc::new(Counting { running: Mutex::new((0, 0)) });
    let mut machines: Vec<(Machine, Arc<dyn Prober>)> = Vec::new();
    for name in ["b", "a"] {
        let json = serde_json::json!({
            "role": "r", "rebootOrder": 0,
            "healthChecks": (0..20).map(|i| serde_json::json!({"type": "command", "command": format!("c{i}")})).collect::<Vec<_>>()
        });
        machines.push((crate::metadata::parse_machine(name, json, None).unwrap(), prober.clone()));
    }
    let reports = check_fleet_once(&machines, 7).await;
    assert_eq!(reports.len(), 40);
    assert_eq!((reports[0].machine.as_str(), reports[0].index), ("a", 0));
    assert_eq!((reports[39].machine.as_str(), reports[39].index), ("b", 19));
    assert_eq!(prober.running.lock().unwrap().1, 7);
}
