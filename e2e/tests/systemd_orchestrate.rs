//! Orchestration across hosts that boot a real systemd (issue 15, case 9):
//! deploy and reboot order, a failure stopping only its dependents, the
//! recreate strategy and lab's own run lock, all read from the hosts' own
//! switch logs (`/var/log/lab-switch.log`, written by the model of
//! switch-to-configuration, also at every boot) and links. One fleet serves
//! every assertion: booting it is most of the cost.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_core::metadata::DeployStrategy;
use lab_e2e::run::text;
use lab_e2e::switch_log::switches;
use lab_e2e::systemd_fleet::SystemdFleet;
use lab_e2e::{HostSpec, SystemSpec};

/// Every wait here stops a hang; none measures.
const LIMIT: Duration = Duration::from_secs(300);

/// `[start, end]` of the host's `switch` to `system`, from its switch log.
fn span(fleet: &SystemdFleet, host: &str, system: &PathBuf) -> (f64, f64) {
    let log = switches(fleet, host);
    let start = log.iter().find(|s| s.1 == "start" && s.2 == "switch" && &s.3 == system);
    let start = start.unwrap_or_else(|| panic!("{host} never switched to {system:?}: {log:?}")).0;
    let end = log.iter().find(|s| s.1.starts_with("end-") && s.2 == "switch" && &s.3 == system && s.0 >= start);
    (start, end.unwrap_or_else(|| panic!("{host}'s switch never ended: {log:?}")).0)
}

/// When the host last booted: its boot unit's `test` switch, logged at
/// every boot (the first switch logged after `after`).
fn booted_at(fleet: &SystemdFleet, host: &str, after: f64) -> f64 {
    let log = switches(fleet, host);
    let boot = log.iter().find(|s| s.1 == "start" && s.2 == "test" && s.0 > after);
    boot.unwrap_or_else(|| panic!("{host} logged no boot after {after}: {log:?}")).0
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn deploy_and_reboot_follow_dependencies_recreate_activates_together_and_a_second_run_is_refused() {
    let mut cache = HostSpec::new("cache");
    cache.metadata.orchestration.healthy_deadline = 4;
    let specs = vec![
        HostSpec::new("db"),
        HostSpec::new("web").depends_on(&["db"]),
        cache,
        HostSpec::new("api").depends_on(&["cache"]),
        HostSpec::new("c1").strategy(DeployStrategy::Recreate),
        HostSpec::new("c2").strategy(DeployStrategy::Recreate),
    ];
    let mut fleet = SystemdFleet::start(specs).unwrap();
    let gen1: Vec<PathBuf> = ["cache", "api"].iter().map(|n| fleet.links(n).unwrap().current).collect::<Vec<_>>();
    // db's switch is slow (3 s): the first run holds the fleet's lock while
    // the second one tries; c1's and c2's are slow enough to see them
    // overlap.
    let slow = |ms| SystemSpec { activation_delay: Duration::from_millis(ms), ..SystemSpec::healthy() };
    let gen2 = fleet
        .write_generation(
            2,
            &[
                ("db", slow(3000)),
                ("web", SystemSpec::healthy()),
                ("cache", SystemSpec::unhealthy()),
                ("api", SystemSpec::healthy()),
                ("c1", slow(1500)),
                ("c2", slow(1500)),
            ],
        )
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut first = fleet.lab(state.path(), &["deploy", "--keep-going"]);
    first.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let first = first.spawn().unwrap();
    let first_pid = first.id();
    let first = std::thread::spawn(move || first.wait_with_output().unwrap());

    // Lock contention: once the first run switches db, a second run on the
    // same fleet and state refuses at once, naming the holder.
    let until = Instant::now() + LIMIT;
    while !switches(&fleet, "db").iter().any(|s| s.1 == "start" && s.3 == gen2["db"]) {
        assert!(Instant::now() < until, "db's switch to gen2 never started");
        assert!(!first.is_finished(), "the first lab ended before it switched db");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = lab_e2e::output_within(&mut fleet.lab(state.path(), &["deploy"]), LIMIT).unwrap();
    let said = text(&second);
    assert_eq!(second.status.code(), Some(3), "{said}");
    assert!(said.contains(&format!("pid {first_pid}")), "the message names the holder: {said}");

    let out = first.join().unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "cache's rollback makes the run exit 1:\n{log}");
    assert!(log.contains("ROLLED BACK"), "{log}");
    // Exactly one run switched: each machine went to gen2 once.
    for n in ["db", "web", "c1", "c2", "cache"] {
        let tries = switches(&fleet, n).iter().filter(|s| s.1 == "start" && s.3 == gen2[n]).count();
        assert_eq!(tries, 1, "{n} switched to gen2 once, by the first run: {log}");
    }

    // Deploy order from the hosts' own logs: web's switch began after db's
    // had ended.
    let (db, web) = (span(&fleet, "db", &gen2["db"]), span(&fleet, "web", &gen2["web"]));
    assert!(web.0 > db.1, "web switched at {:.2}, before db's switch ended at {:.2}", web.0, db.1);
    // cache failed its health check and is back on gen1 (running, profile,
    // boot default); api, which depends on it, was never touched.
    let links = fleet.links("cache").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen1[0], &gen1[0], &gen1[0]), "{log}");
    assert_eq!(fleet.links("api").unwrap().current, gen1[1]);
    assert!(!switches(&fleet, "api").iter().any(|s| s.3 == gen2["api"]), "api depends on cache: never started");
    // Recreate: c1 and c2 activated together although maxParallel is 1.
    let (c1, c2) = (span(&fleet, "c1", &gen2["c1"]), span(&fleet, "c2", &gen2["c2"]));
    assert!(c1.0.max(c2.0) < c1.1.min(c2.1), "the recreate activations did not overlap: {c1:?} {c2:?}");
    for n in ["db", "web", "cache", "api", "c1", "c2"] {
        assert_eq!(fleet.lab_timers(n).unwrap(), Vec::<String>::new(), "{n}: no watchdog is left");
    }
    for n in ["db", "web", "c1", "c2"] {
        let links = fleet.links(n).unwrap();
        assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2[n], &gen2[n], &gen2[n]), "{n}");
    }

    // Reboot order: db boots before web, read from each host's boot-time
    // switch log.
    let before = now();
    let ids: Vec<String> = ["db", "web"].iter().map(|n| fleet.boot_id(n).unwrap()).collect();
    let out = lab_e2e::output_within(&mut fleet.lab(state.path(), &["reboot", "--on", "db,web"]), LIMIT).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for (n, old) in ["db", "web"].iter().zip(&ids) {
        assert_ne!(&fleet.boot_id(n).unwrap(), old, "{n} rebooted");
        let links = fleet.links(n).unwrap();
        assert_eq!((&links.booted, &links.current), (&gen2[*n], &gen2[*n]), "{n} booted its deployed system");
        assert_eq!(fleet.lab_timers(n).unwrap(), Vec::<String>::new());
    }
    let (db_up, web_up) = (booted_at(&fleet, "db", before), booted_at(&fleet, "web", before));
    assert!(db_up < web_up, "web booted at {web_up:.2}, before db at {db_up:.2}");
    fleet.teardown();
}
