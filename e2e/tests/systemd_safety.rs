//! lab's activation protocol on hosts that boot a real systemd, where it
//! meets what the machine does on its own: lab killed and resumed (issue
//! 15, case 5), switch-to-configuration's lock held by another process
//! (case 4) and a garbage collection between copy and activation (case 7).
//! Every case asserts from the host's own state: its links, boot default,
//! lab-* timers, switch log, profile generations and GC roots.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab_core::store::journal::{self, Entry, StepState};
use lab_e2e::run::text;
use lab_e2e::switch_log::switches;
use lab_e2e::systemd_fleet::SystemdFleet;
use lab_e2e::{HostSpec, SystemSpec};

/// Every wait here stops a hang; none measures.
const LIMIT: Duration = Duration::from_secs(180);

fn host(name: &str, confirm_timeout: i64, activation_timeout: i64) -> HostSpec {
    let mut spec = HostSpec::new(name);
    spec.metadata.orchestration.confirm_timeout = confirm_timeout;
    spec.metadata.orchestration.activation_timeout = activation_timeout;
    spec
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Waits (bounded) until `check` holds.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + LIMIT;
    while !check() {
        assert!(Instant::now() < until, "{what}: not within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lab ARGS…` started in the background, its output in `out`.
fn spawn_lab(fleet: &SystemdFleet, state: &Path, args: &[&str], out: &Path) -> Child {
    let mut cmd: Command = fleet.lab(state, args);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap());
    cmd.spawn().unwrap()
}

/// Kills lab as a power loss would (SIGKILL to the child this test started).
fn kill_9(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
}

fn lab(fleet: &SystemdFleet, state: &Path, args: &[&str]) -> std::process::Output {
    lab_e2e::output_within(&mut fleet.lab(state, args), LIMIT).unwrap()
}

/// The one journal in `state`.
fn journal_in(state: &Path) -> PathBuf {
    let runs = state.join("runs");
    let mut found: Vec<PathBuf> =
        walk(&runs).into_iter().filter(|p| p.extension().is_some_and(|e| e == "jsonl")).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// When `step` last reached `state` in the journal, seconds since the epoch.
fn step_at(journal: &Path, step: &str, state: StepState) -> Option<f64> {
    let records = journal::read(journal).ok()?;
    records.iter().rev().find_map(|r| match &r.entry {
        Entry::Step { step: s, state: st, .. } if s == step && *st == state => Some(r.time_ms as f64 / 1000.0),
        _ => None,
    })
}

/// Every attempt's watchdog units recorded in the journal for `step`.
fn journaled_units(journal: &Path, step: &str) -> Vec<String> {
    let mut units = Vec::new();
    for r in journal::read(journal).unwrap() {
        if let Entry::Step { step: s, state: StepState::Started, detail, .. } = &r.entry {
            if s == step {
                let detail = serde_json::to_value(detail).unwrap();
                for key in ["switch", "watchdog", "confirm"] {
                    if let Some(u) = detail["activated"]["units"][key].as_str() {
                        if !units.contains(&u.to_string()) {
                            units.push(u.to_string());
                        }
                    }
                }
            }
        }
    }
    units
}

/// What systemd on the host lists as lab's timers, and which lab-* services run.
fn leftovers(fleet: &SystemdFleet, host: &str) -> (Vec<String>, String) {
    let timers = fleet.lab_timers(host).unwrap();
    let services = fleet
        .run(
            host,
            &[
                "systemctl",
                "list-units",
                "--type=service",
                "--state=active,activating",
                "--no-legend",
                "--plain",
                "'lab-*'",
            ],
        )
        .unwrap();
    // lab-boot.service is the hosts' model of NixOS's stage 2, not lab's.
    let services: Vec<&str> = services.lines().filter(|l| !l.starts_with("lab-boot.service")).collect();
    (timers, services.join("\n"))
}

/// Profile generations pointing at `system`.
fn generations_of(fleet: &SystemdFleet, host: &str, system: &Path) -> String {
    let script = format!(
        "for l in /nix/var/nix/profiles/system-*-link; do [ \"$l\" -ef {} ] && echo \"$l\"; done; true",
        system.display()
    );
    fleet.run(host, &["sh", "-c", &format!("'{script}'")]).unwrap().trim().to_string()
}

/// Case 5: lab killed (-9) after it armed the watchdog and before the
/// switch started, resumed, killed again in the middle of the switch,
/// resumed again: one switch to the new generation, every watchdog of
/// every attempt gone, and the machine stays on the new generation past
/// every deadline any attempt set.
#[test]
fn lab_killed_twice_mid_activation_and_resumed_leaves_no_stale_watchdog() {
    let (confirm, bound) = (8, 15);
    let mut fleet = SystemdFleet::start(vec![host("res1", confirm, bound)]).unwrap();
    let gen1 = fleet.links("res1").unwrap();
    let slow = SystemSpec { activation_delay: Duration::from_secs(6), ..SystemSpec::healthy() };
    let gen2 = fleet.write_generation(2, &[("res1", slow)]).unwrap()["res1"].clone();
    // The host's nix-env pauses 4 s: lab has armed the watchdog and is
    // setting the profile when it is killed; the switch has not started.
    let slow_nix_env =
        "#!/bin/sh\ntouch /run/e2e-setting-profile\nsleep 4\nexec /usr/local/lib/e2e-real/nix-env \"$@\"\n";
    fleet.run("res1", &["sh", "-c", "'mkdir -p /usr/local/lib/e2e-real && ln -sfn /usr/bin/nix /usr/local/lib/e2e-real/nix-env && rm /usr/bin/nix-env'"]).unwrap();
    fleet.write_file("res1", "/usr/bin/nix-env", slow_nix_env).unwrap();
    fleet.run("res1", &["chmod", "+x", "/usr/bin/nix-env"]).unwrap();

    let state = tempfile::tempdir().unwrap();
    let out = state.path().join("lab-1.out");
    let mut first = spawn_lab(&fleet, state.path(), &["deploy", "--json"], &out);
    wait_until("lab sets the profile", || fleet.run("res1", &["test", "-e", "/run/e2e-setting-profile"]).is_ok());
    let armed = fleet.lab_timers("res1").unwrap();
    assert_eq!(armed.len(), 1, "the long watchdog is armed: {armed:?}");
    kill_9(&mut first);
    assert!(!switches(&fleet, "res1").iter().any(|s| s.3 == gen2), "killed before the switch");
    fleet.run("res1", &["ln", "-sfn", "nix", "/usr/bin/nix-env"]).unwrap();

    // Resumed, and killed again two seconds into the (6 s) switch.
    let out2 = state.path().join("lab-2.out");
    let mut second = spawn_lab(&fleet, state.path(), &["resume", "--json"], &out2);
    wait_until("the resumed switch starts", || switches(&fleet, "res1").iter().any(|s| s.1 == "start" && s.3 == gen2));
    std::thread::sleep(Duration::from_secs(2));
    kill_9(&mut second);
    let (timers, _) = leftovers(&fleet, "res1");
    assert!(!timers.is_empty(), "the resumed attempt's watchdog is armed while its switch runs");

    let out = lab(&fleet, state.path(), &["resume", "--json"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let journal = journal_in(state.path());
    let units = journaled_units(&journal, "deploy/res1/activate");
    assert!(units.len() >= 6, "two attempts, each with its units, are journaled: {units:?}");

    let links = fleet.links("res1").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    assert_eq!(links.booted, gen1.booted, "{links:?}");
    let (timers, services) = leftovers(&fleet, "res1");
    assert_eq!(timers, Vec::<String>::new(), "no watchdog of any attempt is left: {units:?}");
    assert_eq!(services, "", "no lab unit runs");
    let log_switches = switches(&fleet, "res1");
    let to_gen2: Vec<_> = log_switches.iter().filter(|s| s.1 == "start" && s.3 == gen2).collect();
    assert_eq!(to_gen2.len(), 1, "one switch, followed across the kill, never a second: {log_switches:?}");
    assert_eq!(
        fleet.run("res1", &["sh", "-c", "'ls /nix/var/nix/gcroots/lab 2>/dev/null; true'"]).unwrap().trim(),
        "",
        "the GC root is gone"
    );

    // Past every deadline any attempt set (the latest attempt started
    // before the last record; its long watchdog was activationTimeout +
    // confirmTimeout after that), nothing switches back.
    let last_start = step_at(&journal, "deploy/res1/activate", StepState::Started).unwrap();
    let deadline = last_start + (bound + confirm) as f64 + 3.0;
    while now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    let links = fleet.links("res1").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    let after = switches(&fleet, "res1");
    assert_eq!(after.len(), log_switches.len(), "no switch after lab reported success: {after:?}");
    assert_eq!(leftovers(&fleet, "res1").0, Vec::<String>::new());
    fleet.teardown();
}

/// Holds switch-to-configuration's lock for $1 seconds (waiting for it if
/// a switch holds it), logging when in the switch log's format.
const HOLD_LOCK: &str = "#!/bin/sh
exec 9>>/run/nixos/switch-to-configuration.lock
flock 9
printf '%s hold-start - -\\n' \"$(date +%s.%N)\" >>/var/log/lab-switch.log
sleep \"$1\"
printf '%s hold-end - -\\n' \"$(date +%s.%N)\" >>/var/log/lab-switch.log
";

/// Starts the lock holder on `lock1` as the transient unit `unit`.
fn hold(fleet: &SystemdFleet, unit: &str, seconds: &str) {
    let unit = format!("--unit={unit}");
    let argv =
        ["systemd-run", &unit, "--description=e2e-lock-holder", "--collect", "/bin/sh", "/root/hold-lock", seconds];
    fleet.run("lock1", &argv).unwrap();
}

/// Case 4: another process holds switch-to-configuration's lock when lab
/// activates, and again when lab rolls back: lab's switches wait for it
/// (the real switch-to-configuration fails at once on a held lock), the
/// activation succeeds, the rollback restores the running system, the
/// profile and the boot default, and drops the failed generation.
#[test]
fn switch_lock_held_by_another_process_during_activation_and_rollback() {
    let mut fleet = SystemdFleet::start(vec![host("lock1", 8, 60)]).unwrap();
    fleet.write_file("lock1", "/root/hold-lock", HOLD_LOCK).unwrap();

    // During activation: held for 4 s from before the deploy.
    let gen2 = fleet.write_generation(2, &[("lock1", SystemSpec::healthy())]).unwrap()["lock1"].clone();
    hold(&fleet, "e2e-hold-1", "4");
    wait_until("the holder has the lock", || switches(&fleet, "lock1").iter().any(|s| s.1 == "hold-start"));
    let state = tempfile::tempdir().unwrap();
    let out = lab(&fleet, state.path(), &["deploy", "--json"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let log1 = switches(&fleet, "lock1");
    let released = log1.iter().find(|s| s.1 == "hold-end").expect("the holder let go").0;
    let started = log1.iter().find(|s| s.1 == "start" && s.3 == gen2).expect("the switch to gen2").0;
    assert!(started >= released, "lab's switch waited for the lock: {log1:?}");
    assert!(!log1.iter().any(|s| s.3 == gen2 && s.1 == "end-1"), "no switch failed on the lock: {log1:?}");
    let links = fleet.links("lock1").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    assert_eq!(fleet.lab_timers("lock1").unwrap(), Vec::<String>::new());

    // During rollback: gen3's switch runs 3 s and exits 4; a holder queued
    // on the lock takes it as the switch ends and keeps it 4 s, while lab
    // starts its rollback.
    let failing = SystemSpec { activation_delay: Duration::from_secs(3), activation_exit: 4, ..SystemSpec::healthy() };
    let gen3 = fleet.write_generation(3, &[("lock1", failing)]).unwrap()["lock1"].clone();
    let out3 = state.path().join("lab-3.out");
    let mut deploy = spawn_lab(&fleet, state.path(), &["deploy", "--json"], &out3);
    wait_until("the switch to gen3 starts", || switches(&fleet, "lock1").iter().any(|s| s.1 == "start" && s.3 == gen3));
    hold(&fleet, "e2e-hold-2", "4");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = deploy.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "lab did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&out3).unwrap() + &std::fs::read_to_string(out3.with_extension("err")).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("exited with status 4") && log.contains("rolled-back"), "{log}");
    let log3 = switches(&fleet, "lock1");
    let held = log3.iter().filter(|s| s.1 == "hold-start").nth(1).expect("the second holder took the lock").0;
    let released = log3.iter().filter(|s| s.1 == "hold-end").nth(1).expect("the second holder let go").0;
    let gen3_end = log3.iter().find(|s| s.1 == "end-4" && s.3 == gen3).expect("gen3's switch ended with 4").0;
    assert!(held >= gen3_end, "the holder took the lock after gen3's switch: {log3:?}");
    let back =
        log3.iter().find(|s| s.1 == "start" && s.3 == gen2 && s.0 > gen3_end).expect("a rollback switch to gen2");
    assert!(back.0 >= released, "the rollback waited for the lock: {log3:?}");
    assert!(
        !log3.iter().any(|s| s.3 == gen2 && s.0 > gen3_end && s.1 == "end-1"),
        "no rollback failed on the lock: {log3:?}"
    );
    let links = fleet.links("lock1").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "restored: {links:?}");
    assert_eq!(generations_of(&fleet, "lock1", &gen3), "", "gen3 is no boot entry any more");
    assert_eq!(fleet.lab_timers("lock1").unwrap(), Vec::<String>::new());
    fleet.teardown();
}

/// Case 7: a garbage collection on the host between the copy and the
/// activation (lab killed after the copy, `nix-collect-garbage -d`, then
/// `lab resume`): the copied system survives it (lab rooted it), garbage
/// does not, and the root is gone once the machine is activated.
#[test]
fn a_garbage_collection_between_copy_and_activation_keeps_the_copied_system() {
    let mut fleet = SystemdFleet::start(vec![host("gc1", 4, 60)]).unwrap();
    let gen2 = fleet.write_generation(2, &[("gc1", SystemSpec::healthy())]).unwrap()["gc1"].clone();
    let state = tempfile::tempdir().unwrap();
    let out = state.path().join("lab-1.out");
    let mut deploy = spawn_lab(&fleet, state.path(), &["deploy", "--json"], &out);
    wait_until("the copy finishes", || {
        let runs = state.path().join("runs");
        runs.exists()
            && walk(&runs).iter().any(|j| {
                j.extension().is_some_and(|e| e == "jsonl")
                    && step_at(j, "deploy/gc1/copy", StepState::Finished).is_some()
            })
    });
    kill_9(&mut deploy);
    let gen2_text = gen2.display().to_string();
    fleet.run("gc1", &["nix-store", "--check-validity", &gen2_text]).unwrap();
    let roots = fleet.run("gc1", &["ls", "/nix/var/nix/gcroots/lab"]).unwrap();
    assert!(!roots.trim().is_empty(), "lab rooted the copy");
    let garbage =
        fleet.run("gc1", &["sh", "-c", "'echo garbage-$(date +%N) > /tmp/g && nix-store --add /tmp/g'"]).unwrap();
    let garbage = garbage.trim();
    let gc = fleet.run("gc1", &["nix-collect-garbage", "-d"]).unwrap();
    assert!(fleet.run("gc1", &["nix-store", "--check-validity", garbage]).is_err(), "the GC ran: {gc}");
    fleet.run("gc1", &["nix-store", "--check-validity", &gen2_text]).expect("the copied system survived the GC");

    let out = lab(&fleet, state.path(), &["resume", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let links = fleet.links("gc1").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    assert_eq!(
        fleet.run("gc1", &["sh", "-c", "'ls /nix/var/nix/gcroots/lab; true'"]).unwrap().trim(),
        "",
        "the root is gone"
    );
    assert_eq!(fleet.lab_timers("gc1").unwrap(), Vec::<String>::new());
    fleet.teardown();
}

/// Case 9 (blue-green all-or-nothing, moved to these hosts) and the
/// `test`-goal rollback: two blue-green machines are activated with
/// `test`; one fails its health checks, so both go back, each with a
/// `test` switch that leaves the boot loader alone (the boot default never
/// pointed at the new generation, and no rollback wrote it).
#[test]
fn blue_green_is_all_or_nothing_and_its_test_rollback_leaves_the_boot_loader_alone() {
    use lab_core::metadata::DeployStrategy;
    let spec = |name: &str| {
        let mut h = host(name, 4, 60).strategy(DeployStrategy::BlueGreen);
        h.metadata.orchestration.healthy_deadline = 4;
        h
    };
    let mut fleet = SystemdFleet::start(vec![spec("bg1"), spec("bg2")]).unwrap();
    let gen1 = [fleet.links("bg1").unwrap(), fleet.links("bg2").unwrap()];
    let gens = fleet.write_generation(2, &[("bg1", SystemSpec::healthy()), ("bg2", SystemSpec::unhealthy())]).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = lab(&fleet, state.path(), &["deploy", "--max-parallel", "2", "--json"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("blue-green is all or nothing"), "bg1 went back for bg2: {log}");
    for (i, name) in ["bg1", "bg2"].iter().enumerate() {
        let links = fleet.links(name).unwrap();
        let old = &gen1[i];
        assert_eq!(
            (&links.current, &links.profile, &links.boot_default),
            (&old.current, &old.profile, &old.boot_default),
            "{name}: {links:?}"
        );
        let log_switches = switches(&fleet, name);
        let new = &gens[*name];
        let tried = log_switches.iter().find(|s| s.1 == "start" && &s.3 == new).expect("the new generation was tested");
        assert_eq!(tried.2, "test", "{name}: {log_switches:?}");
        let back: Vec<_> = log_switches.iter().filter(|s| s.1 == "start" && s.0 > tried.0).collect();
        assert!(
            !back.is_empty() && back.iter().all(|s| s.2 == "test"),
            "{name}: the rollback only ran test: {log_switches:?}"
        );
        assert_eq!(fleet.lab_timers(name).unwrap(), Vec::<String>::new(), "{name}");
    }
    fleet.teardown();
}
