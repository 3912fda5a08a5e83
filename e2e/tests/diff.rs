//! `lab plan deploy --diff` against hosts that boot a real systemd and have
//! their own /nix store: the running system's closure is read on the host
//! (the controller's store no longer has it), the new one is built locally,
//! and the known package and kernel changes are shown.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use lab_e2e::run::text;
use lab_e2e::served::Served;
use lab_e2e::systemd_fleet::SystemdFleet;
use lab_e2e::{HostSpec, SystemSpec};
use serde_json::Value;

/// Every wait here stops a hang; none measures.
const LIMIT: Duration = Duration::from_secs(400);

fn plan(fleet: &SystemdFleet, args: &[&str]) -> Output {
    let mut cmd = fleet.command(lab_e2e::lab_binary());
    cmd.arg("--file").arg(fleet.fleet_file()).args(["plan", "deploy", "--diff"]).args(args);
    cmd.arg("--ssh-config").arg(fleet.ssh_config());
    lab_e2e::output_within(&mut cmd, LIMIT).unwrap()
}

fn machine<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["machine"] == name)
        .unwrap_or_else(|| panic!("no {name}: {json}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|p| format!("{} {}", p["name"].as_str().unwrap(), p["versions"])).collect()
}

/// Drops the controller's copy of generation 1 (its out-links, then the
/// store paths): what lab reads of the running systems can only come from
/// the hosts.
fn forget_locally(fleet: &SystemdFleet, systems: &[&Path]) {
    let dir = fleet.fleet_file().parent().unwrap().to_path_buf();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "result-1" || name.starts_with("result-1-") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let out = Command::new("nix-store").arg("--delete").args(systems).output().unwrap();
    assert!(out.status.success(), "nix-store --delete: {}", String::from_utf8_lossy(&out.stderr));
    for system in systems {
        assert!(!system.exists(), "{} is still in the controller's store", system.display());
    }
}

fn curl(url: &str) -> String {
    let out =
        lab_e2e::output_within(Command::new("curl").args(["-sS", "--fail", "--max-time", "300", url]), LIMIT).unwrap();
    assert!(out.status.success(), "curl {url}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The host's own view of its running closure: its total NAR size.
fn closure_size_on(fleet: &SystemdFleet, host: &str) -> u64 {
    let script = "nix-store --query --size $(nix-store --query --requisites /run/current-system)";
    let out = fleet.run(host, &["sh", "-c", &format!("'{script}'")]).unwrap();
    out.lines().map(|l| l.trim().parse::<u64>().unwrap()).sum()
}

#[test]
fn the_diff_shows_known_package_and_kernel_changes_read_from_the_hosts() {
    let gen1_web = SystemSpec::healthy().with_packages(&[("hello", "2.12"), ("curl", "8.0"), ("jq", "1.6")]);
    let gen1_db = SystemSpec::healthy().with_packages(&[("hello", "2.12")]);
    let mut fleet =
        SystemdFleet::start(vec![HostSpec::new("dfweb").system(gen1_web), HostSpec::new("dfdb").system(gen1_db)])
            .unwrap();
    let running = (fleet.links("dfweb").unwrap().current, fleet.links("dfdb").unwrap().current);
    let sizes = (closure_size_on(&fleet, "dfweb"), closure_size_on(&fleet, "dfdb"));
    let gen2 = fleet
        .write_generation(
            2,
            &[
                (
                    "dfweb",
                    SystemSpec::healthy()
                        .with_packages(&[("hello", "2.12.1"), ("jq", "1.6"), ("ripgrep", "14.0")])
                        .with_kernel("linux-6.6.2"),
                ),
                ("dfdb", SystemSpec::healthy().with_packages(&[("hello", "2.12"), ("htop", "3.3")])),
            ],
        )
        .unwrap();
    forget_locally(&fleet, &[running.0.as_path(), running.1.as_path()]);
    let state = tempfile::tempdir().unwrap();

    let out = plan(&fleet, &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    // The plan itself is still there.
    assert!(json["waves"].is_array(), "{json}");
    let web = machine(&json, "dfweb");
    assert_eq!(web["currentSystem"], running.0.to_str().unwrap(), "{web}");
    assert_eq!(web["newSystem"], gen2["dfweb"].to_str().unwrap(), "{web}");
    assert_eq!(names(&web["added"]), ["ripgrep [\"14.0\"]"], "{web}");
    assert_eq!(names(&web["removed"]), ["curl [\"8.0\"]"], "{web}");
    let changed = &web["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{web}");
    assert_eq!(
        (&changed[0]["name"], &changed[0]["before"], &changed[0]["after"]),
        (&Value::from("hello"), &serde_json::json!(["2.12"]), &serde_json::json!(["2.12.1"]))
    );
    let boot: Vec<(String, bool)> = web["boot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["part"].as_str().unwrap().to_string(), b["changed"].as_bool().unwrap()))
        .collect();
    assert_eq!(boot, [("kernel".into(), true), ("initrd".into(), false), ("kernel-modules".into(), false)]);
    assert_eq!(web["rebootNeeded"], true, "{web}");
    assert_eq!(web["closure"]["beforeBytes"], sizes.0, "{web}");

    let db = machine(&json, "dfdb");
    assert_eq!(db["currentSystem"], running.1.to_str().unwrap(), "{db}");
    assert_eq!(names(&db["added"]), ["htop [\"3.3\"]"], "{db}");
    assert_eq!((db["removed"].as_array().unwrap().len(), db["changed"].as_array().unwrap().len()), (0, 0), "{db}");
    assert_eq!(db["rebootNeeded"], false, "{db}");
    assert_eq!(db["closure"]["beforeBytes"], sizes.1, "{db}");
    assert!(db["closure"]["deltaBytes"].as_i64().unwrap() > 0, "{db}");

    // lab serve answers the same diff, per machine, on request; a machine
    // it does not show is 404.
    let mut cmd = fleet.command(lab_e2e::lab_binary());
    cmd.arg("--file").arg(fleet.fleet_file()).args(["serve", "--port", "0", "--interval", "60"]);
    cmd.arg("--ssh-config").arg(fleet.ssh_config()).arg("--state-dir").arg(state.path());
    let served = Served::start(cmd, LIMIT);
    for name in ["dfweb", "dfdb"] {
        let answer: Value = serde_json::from_str(&curl(&format!("{}/api/diff/{name}", served.url))).unwrap();
        assert_eq!(&answer, machine(&json, name), "{}", served.log());
    }
    let out = lab_e2e::output_within(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{}/api/diff/nosuch", served.url)),
        LIMIT,
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    drop(served);

    // The text, with the build's progress on stderr.
    let out = plan(&fleet, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    for line in [
        "dfweb: 1 changed, 1 added, 1 removed, reboot needed",
        "  [C] hello: 2.12 → 2.12.1, ",
        "  [A] ripgrep: 14.0, ",
        "  [R] curl: 8.0, ",
        "  boot: kernel changes, initrd same, kernel-modules same; reboot needed (the new system differs from the booted one in its kernel)",
        "dfdb: 0 changed, 1 added, 0 removed, no reboot",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("building the new systems of 2 machines"), "{stderr}");

    // A host without nix-store: exit 1, the error names it, the other
    // machine's diff is still shown.
    fleet.run("dfdb", &["mv", "/usr/bin/nix-store", "/usr/bin/nix-store.away"]).unwrap();
    let out = plan(&fleet, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = machine(&json, "dfdb")["error"].as_str().unwrap().to_string();
    assert_eq!(
        error,
        "dfdb: cannot read the closure of /run/current-system: lab: no nix-store in /run/current-system/sw/bin nor in the PATH (exit 127)"
    );
    assert_eq!(machine(&json, "dfweb")["rebootNeeded"], true);
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: dfdb: no diff"), "{}", text(&out));
    fleet.teardown();
}
