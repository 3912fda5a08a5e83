//! Faults injected into real `lab` runs against namespaced test hosts
//! (issue 10, "Faults"): sshd killed in the middle of an activation, of a
//! closure copy and of a wait for boot; a slow host and a cut-off host in
//! one wave; a flapping health endpoint; a full or read-only state
//! directory; a damaged journal; two runs racing for the lock.
//!
//! Each test checks what a user would: every machine ends in a state lab
//! reports (its `--json` events), nothing is rebooted or activated twice,
//! and nothing that depends on a machine is touched while that machine is
//! not healthy. Facts about the machines come from their own logs, not from
//! lab. Needs root, nix, sshd and tc; `cargo build -p lab-cli -p lab-e2e` first.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lab_e2e::hostlog::now_us;
use lab_e2e::run::{activations, events, journal_path, journal_records, lab_command, started, text};
use lab_e2e::{output_within, FleetSpec, HostSpec, SystemSpec, TestFleet, TestHost};
use serde_json::Value;

/// Bound on any one lab run.
const RUN: Duration = Duration::from_secs(120);
/// Bound on waiting for a host to reach a point where a fault is injected.
const POINT: Duration = Duration::from_secs(60);

/// `lab ARGS --json` against the fleet, with its state in `state`.
fn lab_cmd(fleet: &TestFleet, state: &Path, args: &[&str]) -> Command {
    let mut cmd = lab_command(fleet, state, args);
    cmd.arg("--json");
    cmd
}

fn lab(fleet: &TestFleet, state: &Path, args: &[&str]) -> Output {
    output_within(&mut lab_cmd(fleet, state, args), RUN).unwrap()
}

/// Starts lab in the background; join for its output.
fn lab_bg(fleet: &TestFleet, state: &Path, args: &[&str]) -> JoinHandle<Output> {
    let mut cmd = lab_cmd(fleet, state, args);
    std::thread::spawn(move || output_within(&mut cmd, RUN).unwrap())
}

/// The last thing lab said about each machine: `healthy`, `failed`,
/// `rolled-back` or `skipped`; a machine lab said nothing final about is
/// missing (and fails the "known state" checks).
fn final_states(events: &[Value]) -> std::collections::BTreeMap<String, String> {
    let mut states = std::collections::BTreeMap::new();
    for e in events {
        let machine = e["machine"].as_str().unwrap_or_default().to_string();
        let state = match e["event"].as_str().unwrap_or_default() {
            "machine-healthy" => "healthy",
            "step-failed" => "failed",
            "rolled-back" => "rolled-back",
            "skipped" if e["reason"] != "already done" => "skipped",
            _ => continue,
        };
        // A failure is final; a later skip of the machine's other steps does not hide it.
        let entry = states.entry(machine).or_insert_with(|| state.to_string());
        if entry != "failed" && entry != "rolled-back" {
            *entry = state.to_string();
        }
    }
    states
}

/// Index of the first event matching `pred`.
fn position(events: &[Value], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    events.iter().position(pred)
}

fn healthy(events: &[Value], machine: &str) -> Option<usize> {
    position(events, |e| e["event"] == "machine-healthy" && e["machine"] == machine)
}

fn reboots(host: &TestHost) -> usize {
    host.events("reboot-start").len()
}

fn wait_event(host: &TestHost, event: &str, count: usize) {
    assert!(
        host.wait_for(POINT, |h| h.events(event).len() >= count),
        "{} never logged {event} #{count}: {:#?}",
        host.name(),
        host.log()
    );
}

/// Kills every sshd process of `host` (listener and sessions): exactly
/// those in the host's network namespace, never the machine's own.
fn kill_sshd(host: &TestHost) -> usize {
    let ns = |pid: &str| std::fs::metadata(format!("/proc/{pid}/ns/net")).ok().map(|m| (m.dev(), m.ino()));
    let ours = ns(&host.init_pid().unwrap().to_string()).expect("the host's netns");
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if pid.parse::<i32>().is_err() {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "sshd" && ns(&pid) == Some(ours) {
            // SAFETY: kill(2) on a pid we just checked belongs to the test host.
            unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
            killed += 1;
        }
    }
    killed
}

/// True while a process of `host` (its netns) has `needle` in its command line.
fn host_runs(host: &TestHost, needle: &str) -> bool {
    let ns = |pid: &str| std::fs::metadata(format!("/proc/{pid}/ns/net")).ok().map(|m| (m.dev(), m.ino()));
    let ours = ns(&host.init_pid().unwrap().to_string());
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let pid = entry.file_name().to_string_lossy().to_string();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains(needle) && ns(&pid) == ours
    })
}

fn start_sshd(host: &TestHost) {
    let out = host.exec(&["/usr/local/bin/systemctl", "start", "sshd"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(host.wait_for(Duration::from_secs(10), |h| h.ssh_up()));
}

/// Slows the host's own interface (inside its namespace) to `rate`, or
/// back to full speed, with a token bucket (tbf): every exchange queues
/// behind the ones before it. Latency comes from `HostSpec::latency` (this
/// kernel has no netem).
fn throttle(host: &TestHost, rate: Option<&str>) {
    let args: Vec<&str> = match rate {
        Some(r) => {
            vec!["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", r, "burst", "4kb", "latency", "10s"]
        }
        None => vec!["tc", "qdisc", "del", "dev", "eth0", "root"],
    };
    let out = host.exec(&args).unwrap();
    assert!(out.status.success(), "tc in {}: {out:?}", host.name());
}

fn chain(names: &[&str], boot_delay: Duration, reboot_delay: i64) -> Vec<HostSpec> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut h = HostSpec::new(n).boot_delay(boot_delay);
            h.metadata.orchestration.reboot_delay = reboot_delay;
            if i > 0 {
                h = h.depends_on(&[names[i - 1]]);
            }
            h
        })
        .collect()
}

/// When the journal recorded `step` in `state`, in µs since the epoch.
fn journal_time_us(state: &Path, step: &str, to: &str) -> u64 {
    let records = journal_records(state);
    let record = records
        .iter()
        .find(|r| r["step"] == step && r["state"] == to)
        .unwrap_or_else(|| panic!("no {to} record of {step}"));
    record["timeMs"].as_u64().unwrap() * 1000
}

#[test]
fn sshd_killed_mid_activation_the_detached_activation_finishes_and_lab_follows_up() {
    let spec = FleetSpec::new(vec![HostSpec::new("db"), HostSpec::new("web").depends_on(&["db"])]);
    let mut fleet = TestFleet::start(spec).unwrap();
    let state = tempfile::tempdir().unwrap();
    let slow = SystemSpec { activation_delay: Duration::from_secs(3), ..SystemSpec::healthy() };
    let gen2 = fleet.write_generation(2, &[("db", slow), ("web", SystemSpec::healthy())]).unwrap();
    let run = lab_bg(&fleet, state.path(), &["deploy"]);
    let db = fleet.host("db");
    assert!(db.wait_for(POINT, |h| activations(h, "2") == 1), "db never started activating");
    let killed = kill_sshd(db);
    let out = run.join().unwrap();
    let (log, ev) = (text(&out), events(&out));
    assert!(killed >= 2, "listener and lab's session: {killed}");
    assert_eq!(out.status.code(), Some(0), "{log}");
    // The activation ran on without the connection, once; lab confirmed it.
    assert_eq!(activations(db, "2"), 1);
    assert!(!db.events("activate-done").is_empty());
    assert_eq!(db.current_system().unwrap(), gen2["db"]);
    assert_eq!(db.profile_system().unwrap(), gen2["db"]);
    let web = fleet.host("web");
    assert_eq!(web.current_system().unwrap(), gen2["web"]);
    assert_eq!(activations(web, "2"), 1);
    // web was touched only after db was healthy again.
    assert!(started(&ev, "web", "activate").unwrap() > healthy(&ev, "db").unwrap(), "{log}");
    let states = final_states(&ev);
    assert_eq!((states["db"].as_str(), states["web"].as_str()), ("healthy", "healthy"), "{log}");
    fleet.teardown().unwrap();
}

/// Makes the host hold every closure-copy session (`nix-store --serve`, what
/// `nix copy --to ssh://` runs there) before it starts, while `hold` exists:
/// a stand-in `nix-store` ahead of the real one on the host's PATH marks
/// `held` and waits (bounded) for the file to go. The cut is then made at
/// a known point, whatever the machine's load.
fn hold_copies(host: &TestHost) -> (PathBuf, PathBuf) {
    let (hold, held) = (host.dir().join("hold-copy"), host.dir().join("copy-held"));
    // The real one, as found on this machine's PATH (hosts share its /usr and /nix).
    let path = std::env::var_os("PATH").unwrap_or_default();
    let real = std::env::split_paths(&path).map(|d| d.join("nix-store")).find(|p| p.is_file()).expect("nix-store");
    let script = format!(
        "#!/bin/sh\n# lab-e2e: holds copy sessions while {hold} exists\n\
         case \" $* \" in *\" --serve \"*)\n  : > {held}\n  i=0\n  \
         while [ -e {hold} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done;;\nesac\nexec {real} \"$@\"\n",
        hold = hold.display(),
        held = held.display(),
        real = real.display(),
    );
    let wrapper = host.dir().join("bin/nix-store");
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(&hold, "").unwrap();
    (hold, held)
}

#[test]
fn sshd_killed_mid_copy_fails_that_machine_cleanly_and_a_new_run_finishes_it() {
    let mut fleet = TestFleet::start(FleetSpec::new(vec![HostSpec::new("far")])).unwrap();
    let state = tempfile::tempdir().unwrap();
    let gen2 = fleet.write_generation(2, &[("far", SystemSpec::healthy())]).unwrap();
    let far = fleet.host("far");
    let gen1 = far.current_system().unwrap();
    let (hold, held) = hold_copies(far);
    let run = lab_bg(&fleet, state.path(), &["deploy"]);
    // The copy's session is open on far and held there: cut it.
    let t = Instant::now();
    while t.elapsed() < POINT && !held.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(held.exists(), "no copy session ever started on far");
    assert!(host_runs(far, "--serve"), "the held copy session is not running on far");
    assert!(kill_sshd(far) >= 2, "sshd's listener and the copy's session were killed");
    std::fs::remove_file(&hold).unwrap();
    let out = run.join().unwrap();
    let (log, ev) = (text(&out), events(&out));
    assert_eq!(out.status.code(), Some(1), "{log}");
    let failed = position(&ev, |e| e["event"] == "step-failed" && e["machine"] == "far").map(|i| &ev[i]);
    assert_eq!(failed.map(|e| e["action"].clone()), Some("copy".into()), "{log}");
    assert_eq!(final_states(&ev)["far"], "failed");
    // Nothing was activated: far runs and boots what it did.
    assert_eq!(activations(far, "2"), 0);
    assert_eq!(far.current_system().unwrap(), gen1);
    assert_eq!(far.profile_system().unwrap(), gen1);

    // sshd back: a new run copies and activates once.
    start_sshd(far);
    let out = lab(&fleet, state.path(), &["deploy"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(activations(far, "2"), 1);
    assert_eq!(far.current_system().unwrap(), gen2["far"]);
    fleet.teardown().unwrap();
}

#[test]
fn connection_lost_while_waiting_for_boot_lab_waits_and_reboots_nothing_twice() {
    let fleet = TestFleet::start(FleetSpec::new(chain(&["r1", "r2"], Duration::from_millis(800), 0))).unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = lab_bg(&fleet, state.path(), &["reboot"]);
    let r1 = fleet.host("r1");
    wait_event(r1, "down", 1);
    // Cut off while down; it boots unseen; back 2 s after it booted.
    r1.set_link(false).unwrap();
    wait_event(r1, "boot-complete", 2);
    std::thread::sleep(Duration::from_secs(2));
    r1.set_link(true).unwrap();
    let link_up = now_us();
    let out = run.join().unwrap();
    let (log, ev) = (text(&out), events(&out));
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r2 = fleet.host("r2");
    assert_eq!((reboots(r1), reboots(r2)), (1, 1), "{log}");
    // r2 went down only after lab could see r1 again and found it healthy.
    assert!(r2.events("reboot-start")[0].at_us > link_up);
    assert!(started(&ev, "r2", "reboot").unwrap() > healthy(&ev, "r1").unwrap());
    let states = final_states(&ev);
    assert_eq!((states["r1"].as_str(), states["r2"].as_str()), ("healthy", "healthy"), "{log}");
    fleet.teardown().unwrap();
}

#[test]
fn a_slow_host_and_a_cut_off_host_in_one_wave() {
    // 150 ms each way on every ssh connection, and a narrow link.
    let mut slow = HostSpec::new("slow").boot_delay(Duration::from_millis(500)).latency(Duration::from_millis(150));
    slow.metadata.orchestration.reboot_delay = 1;
    let mut cut = HostSpec::new("cut").boot_delay(Duration::from_millis(500));
    cut.metadata.orchestration.reboot_delay = 1;
    cut.metadata.orchestration.reboot_timeout = 6;
    let after = HostSpec::new("after").depends_on(&["cut"]);
    let fleet = TestFleet::start(FleetSpec::new(vec![slow, cut, after])).unwrap();
    let state = tempfile::tempdir().unwrap();
    throttle(fleet.host("slow"), Some("64kbit"));
    let run = lab_bg(&fleet, state.path(), &["reboot", "--max-parallel", "2", "--keep-going"]);
    let cut = fleet.host("cut");
    wait_event(cut, "down", 1);
    cut.set_link(false).unwrap();
    let out = run.join().unwrap();
    cut.set_link(true).unwrap();
    let (log, ev) = (text(&out), events(&out));
    assert_eq!(out.status.code(), Some(1), "{log}");
    let wave = position(&ev, |e| e["event"] == "wave-started").map(|i| ev[i]["machines"].clone());
    assert_eq!(wave, Some(serde_json::json!(["cut", "slow"])), "one wave: {log}");
    let states = final_states(&ev);
    assert_eq!(states["slow"], "healthy", "slow but fine: {log}");
    assert_eq!(states["cut"], "failed", "{log}");
    assert_eq!(states["after"], "skipped", "{log}");
    let failed = &ev[position(&ev, |e| e["event"] == "step-failed" && e["machine"] == "cut").unwrap()];
    assert_eq!(failed["action"], "wait-for-boot", "{log}");
    assert!(failed["error"].as_str().unwrap().contains("rebootTimeout"), "{log}");
    assert_eq!((reboots(fleet.host("slow")), reboots(cut)), (1, 1));
    // The latency was there: seeing slow's new boot id took at least the
    // round trips of an ssh connection (TCP, key exchange, authentication,
    // session: more than 3 of 300 ms) after it was up.
    let up = fleet.host("slow").events("boot-complete").last().unwrap().at_us as u64;
    let seen_us = journal_time_us(state.path(), "reboot/slow/wait-for-boot", "finished");
    assert!(seen_us - up >= 900_000, "slow's boot was seen {} ms after it was up", (seen_us - up) / 1000);
    assert_eq!(reboots(fleet.host("after")), 0, "after depends on cut: never touched");
    assert_eq!(started(&ev, "after", "wait"), None);
    fleet.teardown().unwrap();
}

#[test]
fn a_flapping_health_endpoint_is_judged_by_its_thresholds() {
    // Every check: interval 1 s, failureThreshold 3. One failed probe at a
    // time (pass, fail, pass …) stays under the threshold: no rollback.
    let mut flap = HostSpec::new("flap");
    flap.metadata.orchestration.min_healthy_time = 4;
    let mut fleet = TestFleet::start(FleetSpec::new(vec![flap])).unwrap();
    let state = tempfile::tempdir().unwrap();
    let gen2 = fleet.write_generation(2, &[("flap", SystemSpec::healthy())]).unwrap();
    let run = lab_bg(&fleet, state.path(), &["deploy"]);
    let host = fleet.host("flap");
    wait_event(host, "activate-done", 2);
    let mut flaps = 0;
    for _ in 0..4 {
        host.set_health("503").unwrap();
        std::thread::sleep(Duration::from_millis(900));
        host.set_health("200").unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        flaps += 1;
        if run.is_finished() {
            break;
        }
    }
    let out = run.join().unwrap();
    let (log, ev) = (text(&out), events(&out));
    assert!(flaps >= 2, "the endpoint flapped during the gate");
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(final_states(&ev)["flap"], "healthy");
    assert_eq!(host.current_system().unwrap(), gen2["flap"]);
    assert_eq!(activations(host, "1"), 0, "never rolled back");
    fleet.teardown().unwrap();
}

/// A tiny tmpfs over a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Tmpfs {
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "lab-faults"]).arg(dir).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` to the last byte (bounded).
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    for _ in 0..100_000 {
        if file.write_all(&block).and_then(|_| file.sync_data()).is_err() {
            break;
        }
    }
    for _ in 0..4096 {
        if file.write_all(&[0]).and_then(|_| file.sync_data()).is_err() {
            break;
        }
    }
    path
}

/// The state directory fills up while f1 reboots. The journal's last page
/// may still take a few records (up to 4 KiB: at most about 20), so the
/// write that fails can come some steps later; five hosts (8 records each)
/// make sure it comes before the end. What must hold is that no action ran
/// without its record made durable first: every reboot a host did is
/// journaled as started. lab exits 2 saying why, the journal reads, and
/// `lab resume` finishes once there is room again, rebooting nothing twice.
#[test]
fn a_full_state_directory_stops_the_run_before_its_next_action() {
    let names = ["f1", "f2", "f3", "f4", "f5"];
    let fleet = TestFleet::start(FleetSpec::new(chain(&names, Duration::from_secs(1), 0))).unwrap();
    let state = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::mount(state.path(), "size=1m");
    let run = lab_bg(&fleet, state.path(), &["reboot"]);
    let f1 = fleet.host("f1");
    wait_event(f1, "reboot-start", 1);
    let filler = fill(state.path());
    let out = run.join().unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("cannot write the journal") && log.contains("No space left"), "{log}");
    assert!(log.contains("the run stops here"), "{log}");
    // The journal still reads under lab's own rules, and covers every reboot.
    let records = lab_core::store::journal::read(&journal_path(state.path())).unwrap();
    let journaled = |n: &str| {
        records.iter().any(|r| {
            let v = serde_json::to_value(r).unwrap();
            v["step"] == format!("reboot/{n}/reboot") && v["state"] == "started"
        })
    };
    let done: Vec<usize> = names.iter().map(|n| reboots(fleet.host(n))).collect();
    for (n, count) in names.iter().zip(&done) {
        assert!(*count <= 1, "{n} rebooted {count} times");
        assert!(*count == 0 || journaled(n), "{n} rebooted without a journaled start: {records:#?}");
    }
    assert!(done.contains(&0), "the run stopped before the end: {done:?} {log}");

    std::fs::remove_file(filler).unwrap();
    let out = lab(&fleet, state.path(), &["resume"]);
    let (log, ev) = (text(&out), events(&out));
    assert_eq!(out.status.code(), Some(0), "{log}");
    let counts: Vec<usize> = names.iter().map(|n| reboots(fleet.host(n))).collect();
    assert_eq!(counts, [1; 5], "{log}");
    assert!(final_states(&ev).values().all(|s| s == "healthy"), "{log}");
    drop(tmpfs);
    fleet.teardown().unwrap();
}

/// A read-only state directory: lab cannot take the lock or write the
/// journal, so it refuses before touching any machine and says where.
#[test]
fn a_read_only_state_directory_refuses_before_any_action() {
    let fleet = TestFleet::start(FleetSpec::new(chain(&["ro1"], Duration::from_millis(300), 0))).unwrap();
    let state = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::mount(state.path(), "size=1m,ro");
    let out = lab(&fleet, state.path(), &["reboot"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("Read-only file system") && log.contains(&state.path().display().to_string()), "{log}");
    assert!(events(&out).iter().all(|e| e["event"] != "step-started"), "{log}");
    assert_eq!(reboots(fleet.host("ro1")), 0);
    drop(tmpfs);
    fleet.teardown().unwrap();
}

#[test]
fn a_damaged_journal_is_refused_and_a_torn_last_line_is_recovered() {
    let fleet = TestFleet::start(FleetSpec::new(chain(&["j1", "j2", "j3"], Duration::from_millis(800), 0))).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = lab_cmd(&fleet, state.path(), &["reboot"]);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Killed as if the machine lost power once j2 went down.
    wait_event(fleet.host("j2"), "reboot-start", 1);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let journal = journal_path(state.path());
    let original = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let counts = || fleet.hosts().iter().map(reboots).collect::<Vec<_>>();
    let before = counts();

    // Edited by hand: a garbage line, a deleted line, another run's line,
    // and j2's step in flight marked finished (still a valid record).
    let other_run = lines[3].replacen("\"runId\":\"", "\"runId\":\"x", 1);
    let in_flight = |l: &&str| l.contains("\"machine\":\"j2\"") && l.contains("\"state\":\"started\"");
    let reboot = lines.iter().rposition(in_flight).expect("j2 had a step in flight");
    let marked = lines[reboot].replacen("\"state\":\"started\"", "\"state\":\"finished\"", 1);
    let edits = [
        (lines.iter().enumerate().map(|(i, l)| if i == 3 { "{garbage" } else { l }).collect::<Vec<_>>(), "line 4"),
        (lines.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, l)| *l).collect(), "sequence number"),
        (lines.iter().enumerate().map(|(i, l)| if i == 3 { other_run.as_str() } else { l }).collect(), "record of run"),
        (
            lines.iter().enumerate().map(|(i, l)| if i == reboot { marked.as_str() } else { l }).collect(),
            "checksum does not match",
        ),
    ];
    for (edited, why) in edits {
        std::fs::write(&journal, edited.join("\n") + "\n").unwrap();
        let out = lab(&fleet, state.path(), &["resume"]);
        let log = text(&out);
        assert_eq!(out.status.code(), Some(2), "{log}");
        assert!(log.contains("is damaged at") && log.contains(why) && log.contains("refuses to guess"), "{log}");
        assert_eq!(counts(), before, "a refused resume touched nothing");
    }

    // A torn last line (a crash in the middle of writing the next record):
    // that record never became durable, so its action never started; lab
    // drops it, resumes from the records before, and reboots nothing twice.
    // (Cutting one of the real records instead would erase an action that
    // did happen: no journal can tell that from a run that stopped there.)
    let last = lines.last().unwrap();
    std::fs::write(&journal, format!("{original}{}", &last[..last.len() / 2])).unwrap();
    let out = lab(&fleet, state.path(), &["resume"]);
    let (log, ev) = (text(&out), events(&out));
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(counts(), vec![1, 1, 1], "{log}");
    let states = final_states(&ev);
    assert!(states.values().all(|s| s == "healthy"), "{states:?} {log}");
    fleet.teardown().unwrap();
}

#[test]
fn two_runs_started_at_the_same_moment_exactly_one_runs() {
    // rebootDelay 5 s keeps the winner holding the lock while the loser
    // gets there, however their evaluations interleave.
    let fleet = TestFleet::start(FleetSpec::new(chain(&["l1", "l2"], Duration::from_millis(300), 5))).unwrap();
    let state = tempfile::tempdir().unwrap();
    // Warm the evaluation cache, so both runs reach the lock within
    // moments of each other even on a loaded machine.
    let dry = lab(&fleet, state.path(), &["reboot", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let runs: Vec<JoinHandle<Output>> = (0..2)
        .map(|_| {
            let mut cmd = lab_cmd(&fleet, state.path(), &["reboot"]);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                output_within(&mut cmd, RUN).unwrap()
            })
        })
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let winner = outs.iter().find(|o| o.status.code() == Some(0)).unwrap_or_else(|| panic!("{codes:?}"));
    let loser = outs.iter().find(|o| o.status.code() == Some(3)).unwrap_or_else(|| panic!("{codes:?}"));
    let run_id =
        events(winner).iter().find(|e| e["event"] == "run-started").unwrap()["runId"].as_str().unwrap().to_string();
    let said = text(loser);
    assert!(said.contains("another orchestration run holds the lock"), "{said}");
    assert!(said.contains(&format!("run {run_id} (pid ")), "names the holder {run_id}: {said}");
    assert!(events(loser).iter().all(|e| e["event"] != "step-started"), "the loser did nothing");
    assert_eq!((reboots(fleet.host("l1")), reboots(fleet.host("l2"))), (1, 1));
    fleet.teardown().unwrap();
}
