//! `lab serve` against namespaced test hosts: its status, metrics and event
//! stream follow the fleet while a deploy (another `lab` process) runs and
//! while one machine is made unhealthy and one unreachable, each within one
//! probe interval (plus the probe itself). The metrics are read by the
//! reference text-format parser (Debian's python3-prometheus-client) and
//! checked against the status the server shows and what the hosts run.
//! Needs root, nix, sshd, curl and python3-prometheus-client, and
//! `cargo build -p lab-cli -p lab-e2e` first.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab_e2e::run::{lab_command, text};
use lab_e2e::{output_within, FleetSpec, HostSpec, SystemSpec, TestFleet};
use serde_json::Value;

/// The server's probe interval.
const INTERVAL: Duration = Duration::from_secs(2);
/// How long an unreachable machine may hold a probe (ssh's ConnectTimeout).
const CONNECT: Duration = Duration::from_secs(3);
/// Room on a busy 2-core machine for the probe loop to wake up.
const SLACK: Duration = Duration::from_secs(2);
/// Bound on any step that is not about timing (evaluating, deploying).
const LONG: Duration = Duration::from_secs(240);

/// A child process killed when dropped, with its output lines collected.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn spawn(mut cmd: Command, stderr: bool) -> Running {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let pipe: Box<dyn std::io::Read + Send> =
            if stderr { Box::new(child.stderr.take().unwrap()) } else { Box::new(child.stdout.take().unwrap()) };
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Running { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (bounded) until a line satisfies `f`; that line.
    fn wait_line(&self, limit: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| f(l)) {
                return line;
            }
            assert!(start.elapsed() < limit, "no {what} within {limit:?}: {:?}", self.lines());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Running {
    /// Interrupts it (Ctrl-C) and waits, bounded, for it to exit; its exit status.
    fn interrupt(&mut self, limit: Duration) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "it did not stop within {limit:?} of Ctrl-C: {:?}", self.lines());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl -N` reading the event stream at `url`, lines collected.
fn stream(url: &str) -> Running {
    let mut cmd = Command::new("curl");
    cmd.args(["-sSN", "--max-time", "600", url]);
    Running::spawn(cmd, false)
}

fn curl(url: &str) -> String {
    let out = output_within(Command::new("curl").args(["-sS", "--fail", "--max-time", "20", url]), LONG).unwrap();
    assert!(out.status.success(), "curl {url}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn json(url: &str) -> Value {
    serde_json::from_str(&curl(url)).unwrap()
}

/// The `data:` payloads of an event stream's lines that are run events.
fn run_events(lines: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut status_message = false;
    for line in lines {
        if line.starts_with("event: status") {
            status_message = true;
        } else if let Some(data) = line.strip_prefix("data: ") {
            if !status_message {
                out.push(serde_json::from_str(data).unwrap());
            }
            status_message = false;
        }
    }
    out
}

/// The `event: status` payloads of an event stream.
fn status_messages(lines: &[String]) -> Vec<Value> {
    lines
        .windows(2)
        .filter(|w| w[0] == "event: status")
        .filter_map(|w| w[1].strip_prefix("data: ").map(|d| serde_json::from_str(d).unwrap()))
        .collect()
}

/// Every sample as the reference parser reads `text`: (name, labels) → value.
fn parse_metrics(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(String, BTreeMap<String, String>, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter().map(|(n, l, v)| ((n, l), v)).collect()
}

/// The value of the one series of `name` whose labels include `labels`.
fn metric(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|((n, l), _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, v)| *v)
        .collect();
    assert!(hits.len() <= 1, "{name} {labels:?}: {hits:?}");
    hits.first().copied()
}

fn machine<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["machines"].as_array().unwrap().iter().find(|m| m["machine"] == name).unwrap()
}

/// Polls `base` until `ready` holds for a status probed after `after_ms`
/// (and, when asked, for the metrics of that moment); how long it took.
fn follow(
    base: &str,
    after_ms: u64,
    limit: Duration,
    ready: impl Fn(&Value, &str) -> bool,
) -> (Duration, Value, String) {
    let start = Instant::now();
    loop {
        let status = json(&format!("{base}/api/status"));
        let metrics = curl(&format!("{base}/metrics"));
        let fresh = status["probedAtMs"].as_u64().is_some_and(|t| t > after_ms);
        if fresh && ready(&status, &metrics) {
            return (start.elapsed(), status, metrics);
        }
        assert!(start.elapsed() < limit, "not followed within {limit:?}: {status:#}\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn serve_follows_a_deploy_an_unhealthy_and_an_unreachable_machine() {
    let mut db = HostSpec::new("db").criticality(lab_core::metadata::Criticality::High);
    db.metadata.groups = vec!["data".into(), "core".into()];
    let mut web = HostSpec::new("web").depends_on(&["db"]);
    // Long enough healthy to watch the run while it is in progress.
    web.metadata.orchestration.min_healthy_time = 4;
    let spec = FleetSpec::new(vec![db, web, HostSpec::new("sick"), HostSpec::new("gone")]);
    let mut fleet = TestFleet::start(spec).unwrap();
    let state = tempfile::tempdir().unwrap();

    let mut cmd = lab_command(&fleet, state.path(), &["serve", "--port", "0", "--interval", "2"]);
    cmd.args(["--ssh-option", &format!("ConnectTimeout={}", CONNECT.as_secs())]);
    let server = Running::spawn(cmd, true);
    let listening = server.wait_line(LONG, "listening line", |l| l.contains("listening on http://"));
    let base = listening.split("listening on ").nth(1).unwrap().trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "loopback by default: {base}");

    // Everything well: every machine reachable, healthy, up to date.
    let (_, status, metrics) = follow(&base, 0, LONG, |s, _| {
        s["machines"].as_array().unwrap().iter().all(|m| m["reachable"] == true && m["healthy"] == true)
    });
    assert_eq!(status["intervalSeconds"], 2);
    let names: Vec<&str> =
        status["machines"].as_array().unwrap().iter().map(|m| m["machine"].as_str().unwrap()).collect();
    assert_eq!(names, ["db", "gone", "sick", "web"], "sorted by machine");
    let db_status = machine(&status, "db");
    assert_eq!(db_status["generation"], "up-to-date", "{db_status}");
    assert_eq!((db_status["role"].as_str(), db_status["criticality"].as_str()), (Some("test-host"), Some("high")));
    assert_eq!(db_status["checks"].as_array().unwrap().len(), 2, "{db_status}");
    let samples = parse_metrics(&metrics);
    let db_labels = [("machine", "db"), ("role", "test-host"), ("groups", "core,data"), ("criticality", "high")];
    assert_eq!(metric(&samples, "lab_machine_reachable", &db_labels), Some(1.0));
    assert_eq!(metric(&samples, "lab_machine_healthy", &db_labels), Some(1.0));
    assert_eq!(metric(&samples, "lab_machine_up_to_date", &db_labels), Some(1.0));
    assert_eq!(metric(&samples, "lab_machine_reboot_required", &db_labels), Some(0.0));
    for name in ["db", "web", "sick", "gone"] {
        let m = machine(&status, name);
        let uptime = metric(&samples, "lab_machine_uptime_seconds", &[("machine", name)]).unwrap();
        // The metric comes from the probe the status shows or the one after.
        let shown = m["uptimeSeconds"].as_f64().unwrap();
        assert!(uptime >= shown && uptime <= shown + 60.0, "{name}: uptime {uptime} vs {shown}");
        for index in ["0", "1"] {
            let passed = metric(&samples, "lab_machine_health_check_passed", &[("machine", name), ("index", index)]);
            assert_eq!(passed, Some(1.0), "{name} check {index}");
        }
    }

    // A deploy, run by another lab process, watched live.
    let live = stream(&format!("{base}/api/events"));
    let gen2 = fleet.write_generation(2, &[("db", SystemSpec::healthy()), ("web", SystemSpec::healthy())]).unwrap();
    let deploy_started = now_ms();
    let deploy = {
        let mut cmd = lab_command(&fleet, state.path(), &["deploy", "--on", "db,web", "--json"]);
        std::thread::spawn(move || output_within(&mut cmd, LONG).unwrap())
    };
    live.wait_line(LONG, "a step of the deploy on the stream", |l| l.contains("\"event\":\"step-started\""));
    // A page opened now sees the run so far first.
    let late = stream(&format!("{base}/api/events"));
    let deployed = deploy.join().unwrap();
    assert!(deployed.status.success(), "{}", text(&deployed));
    live.wait_line(LONG, "the end of the deploy on the stream", |l| l.contains("\"event\":\"run-finished\""));
    late.wait_line(LONG, "the end of the deploy on the late stream", |l| l.contains("\"event\":\"run-finished\""));
    let printed = lab_e2e::run::events(&deployed);
    let key = |e: &Value| {
        let kind = e["event"].as_str().unwrap_or_default().to_string();
        let tail = ["runId", "step", "machine", "action", "outcome", "reason"].map(|k| e[k].to_string()).join(" ");
        format!("{kind} {tail}")
    };
    // Every step transition the deploy printed, the stream carried (waves
    // and notices are not journaled). Steps of two machines may run at
    // once, so their order may differ: compared as sorted lists, first and
    // last in place.
    let journaled = |e: &&Value| !matches!(e["event"].as_str(), Some("wave-started" | "notice"));
    let sorted = |events: &[Value]| {
        let mut keys: Vec<String> = events.iter().filter(journaled).map(key).collect();
        keys.sort();
        keys
    };
    let streamed = run_events(&live.lines());
    assert_eq!(sorted(&streamed), sorted(&printed), "the live stream is the run's --json events");
    assert_eq!(streamed.first().map(|e| e["event"].clone()), Some("run-started".into()));
    assert_eq!(streamed.last().map(|e| e["event"].clone()), Some("run-finished".into()));
    assert_eq!(late.lines().first().map(String::as_str), Some("event: status"), "the last status first");
    let late_events = run_events(&late.lines());
    assert_eq!(late_events[0]["event"], "run-started", "replayed from the start: {late_events:?}");
    assert_eq!(late_events[0]["command"], "deploy");
    assert_eq!(sorted(&late_events), sorted(&printed), "replay then live, nothing lost or repeated");

    // The status and metrics follow the deploy.
    let (_, status, metrics) = follow(&base, now_ms(), LONG, |s, _| {
        ["db", "web"]
            .iter()
            .all(|n| machine(s, n)["generation"] == "up-to-date" && machine(s, n)["lastDeployMs"].is_u64())
    });
    for name in ["db", "web"] {
        let m = machine(&status, name);
        assert_eq!(m["currentSystem"].as_str().map(std::path::PathBuf::from), Some(gen2[name].clone()), "{m}");
        assert_eq!(fleet.host(name).current_system(), Some(gen2[name].clone()));
        let at = m["lastDeployMs"].as_u64().unwrap();
        assert!(at >= deploy_started && at <= now_ms(), "{name} deployed at {at}");
        assert_eq!(m["lastRun"]["state"], "finished");
    }
    let samples = parse_metrics(&metrics);
    let run_id = printed.iter().find(|e| e["event"] == "run-started").unwrap()["runId"].as_str().unwrap();
    let runs = json(&format!("{base}/api/runs"));
    assert_eq!(runs[0]["runId"], run_id);
    assert_eq!(runs[0]["outcome"], "success");
    assert_eq!(metric(&samples, "lab_runs_total", &[("command", "deploy"), ("outcome", "success")]), Some(1.0));
    assert_eq!(metric(&samples, "lab_steps_total", &[("action", "activate"), ("outcome", "finished")]), Some(2.0));
    assert_eq!(metric(&samples, "lab_step_duration_seconds_count", &[("action", "health-checks")]), Some(2.0));
    assert_eq!(metric(&samples, "lab_last_run_outcome", &[("outcome", "success")]), Some(1.0));
    let deployed_at = machine(&status, "web")["lastDeployMs"].as_u64().unwrap() as f64 / 1000.0;
    assert_eq!(metric(&samples, "lab_machine_last_deploy_timestamp_seconds", &[("machine", "web")]), Some(deployed_at));
    assert_eq!(metric(&samples, "lab_machine_up_to_date", &[("machine", "web")]), Some(1.0));
    let journal = json(&format!("{base}/api/runs/{run_id}"));
    assert!(!journal.to_string().is_empty());

    // One machine unhealthy, one unreachable: the first probe that begins
    // after the change shows it, and one begins within an interval. The
    // change is made right after a probe ended, so that no probe is under
    // way (it would end late, held by the machine cut off).
    let last = json(&format!("{base}/api/status"))["probedAtMs"].as_u64().unwrap();
    follow(&base, last, LONG, |_, _| true);
    fleet.host("sick").set_health("503").unwrap();
    fleet.host("gone").set_link(false).unwrap();
    let changed = now_ms();
    let began = |s: &Value| s["probedAtMs"].as_u64().unwrap() - s["probeMs"].as_u64().unwrap();
    let shows = |s: &Value, m: &str| {
        let samples = parse_metrics(m);
        machine(s, "sick")["healthy"] == false
            && machine(s, "gone")["reachable"] == false
            && metric(&samples, "lab_machine_healthy", &[("machine", "sick")]) == Some(0.0)
            && metric(&samples, "lab_machine_reachable", &[("machine", "gone")]) == Some(0.0)
    };
    let (took, status, metrics) = follow(&base, changed, LONG, |s, m| {
        let shown = shows(s, m);
        // Half a second for the link change to take hold on a busy machine.
        assert!(shown || began(s) <= changed + 500, "a probe begun after the change missed it: {s:#}");
        shown
    });
    let waited = began(&status).saturating_sub(changed);
    eprintln!(
        "serve: unhealthy and unreachable shown {:.1} s after the change; the probe showing it began {:.1} s after \
         the change (interval {:?}) and took {:.1} s",
        took.as_secs_f64(),
        waited as f64 / 1000.0,
        INTERVAL,
        status["probeMs"].as_u64().unwrap() as f64 / 1000.0
    );
    assert!(
        Duration::from_millis(waited) <= INTERVAL + SLACK,
        "the probe showing the change began {waited} ms after it: not within one interval"
    );
    // And that probe ends soon: a machine that does not answer within the
    // interval (at least lab_serve's 3 s floor) is unreachable, so the cut-off
    // machine does not hold the fleet's status for ssh's whole timeout.
    let within = lab_serve::state::answer_within(INTERVAL);
    assert!(
        took <= INTERVAL + within + 2 * SLACK,
        "the change showed {took:?} after it: more than an interval ({INTERVAL:?}) and a probe ({within:?})"
    );
    let sick = machine(&status, "sick");
    assert!(sick["failing"][0].as_str().unwrap().contains("503"), "{sick}");
    let samples = parse_metrics(&metrics);
    assert_eq!(metric(&samples, "lab_machine_health_check_passed", &[("machine", "sick"), ("index", "0")]), Some(0.0));
    assert_eq!(metric(&samples, "lab_machine_health_check_passed", &[("machine", "sick"), ("index", "1")]), Some(1.0));
    assert_eq!(metric(&samples, "lab_machine_health_check_passed", &[("machine", "gone"), ("index", "0")]), None);
    assert_eq!(metric(&samples, "lab_machine_uptime_seconds", &[("machine", "gone")]), None);
    assert_eq!(metric(&samples, "lab_machine_healthy", &[("machine", "web")]), Some(1.0));
    // The page needs no polling: the stream carried a status saying so.
    let pushed = live.wait_line(LONG, "a status message with the change", |l| {
        l.starts_with("data: {") && l.contains("\"probedAtMs\"") && {
            let s: Value = serde_json::from_str(&l[6..]).unwrap();
            s["probedAtMs"].as_u64().is_some_and(|t| t > changed) && machine(&s, "gone")["reachable"] == false
        }
    });
    assert!(pushed.contains("503"));
    assert!(!status_messages(&live.lines()).is_empty());

    // `lab status --prometheus`: the same machine gauges, in a file.
    let file = state.path().join("textfile/lab.prom");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut cmd = lab_command(&fleet, state.path(), &["status", "--prometheus", file.to_str().unwrap()]);
    cmd.args(["--ssh-option", "ConnectTimeout=3"]);
    let out = output_within(&mut cmd, LONG).unwrap();
    assert_eq!(out.status.code(), Some(1), "not all is well: {}", text(&out));
    let samples = parse_metrics(&std::fs::read_to_string(&file).unwrap());
    for name in ["db", "web", "sick", "gone"] {
        let m = machine(&status, name);
        let reachable = metric(&samples, "lab_machine_reachable", &[("machine", name)]);
        assert_eq!(reachable, Some(if m["reachable"] == true { 1.0 } else { 0.0 }), "{name}");
        let healthy = metric(&samples, "lab_machine_healthy", &[("machine", name)]);
        assert_eq!(healthy, Some(if m["healthy"] == true { 1.0 } else { 0.0 }), "{name}");
    }
    assert!(samples.keys().all(|(n, _)| n.starts_with("lab_machine_") || n == "lab_status_probe_timestamp_seconds"));

    // Ctrl-C stops the server, event streams still open, and its ssh with it.
    fleet.host("gone").set_link(true).unwrap();
    let mut server = server;
    let stopped = server.interrupt(Duration::from_secs(60));
    assert!(stopped.success(), "{stopped}: {:?}", server.lines());
    drop((live, late));
    fleet.teardown().unwrap();
}
