use super::*;

fn closure(system: &str, kernel: &str, booted_kernel: Option<&str>, paths: &[(&str, u64)]) -> Closure {
    let store = |name: &str| format!("/nix/store/{}-{name}", "0".repeat(32));
    let mut all: BTreeMap<String, u64> = paths.iter().map(|(n, s)| (store(n), *s)).collect();
    all.insert(store(system), 1000);
    Closure {
        system: store(system),
        boot: [Some(store(kernel)), Some(store("initrd-1")), Some(store("modules-1"))],
        booted: booted_kernel.map(|k| [Some(store(k)), Some(store("initrd-1")), Some(store("modules-1"))]),
        paths: all,
    }
}

#[test]
fn packages_are_added_removed_and_changed_by_name() {
    let before = closure(
        "nixos-system-web-gen1",
        "linux-6.6.1",
        Some("linux-6.6.1"),
        &[("hello-2.12", 100), ("curl-8.0", 300), ("curl-8.0-bin", 50), ("jq-1.6", 70), ("etc", 10)],
    );
    let after = closure(
        "nixos-system-web-gen2",
        "linux-6.6.1",
        Some("linux-6.6.1"),
        &[("hello-2.12.1", 130), ("ripgrep-14.0", 500), ("jq-1.6", 70), ("etc", 12)],
    );
    let d = compare(&before, &after);
    assert_eq!(d.added, vec![Package { name: "ripgrep".into(), versions: vec!["14.0".into()], size_bytes: 500 }]);
    // Both of curl's outputs are one package, one version.
    assert_eq!(d.removed, vec![Package { name: "curl".into(), versions: vec!["8.0".into()], size_bytes: 350 }]);
    assert_eq!(
        d.changed,
        vec![VersionChange {
            name: "hello".into(),
            before: vec!["2.12".into()],
            after: vec!["2.12.1".into()],
            size_delta_bytes: 30
        }]
    );
    // The toplevels (named by generation) are no package; etc only grew.
    assert!(!d.unchanged);
    assert_eq!(d.closure.before_bytes, 1000 + 100 + 350 + 70 + 10);
    assert_eq!(d.closure.after_bytes, 1000 + 130 + 500 + 70 + 12);
    assert_eq!(d.closure.delta_bytes, 182);
    assert_eq!((d.closure.before_paths, d.closure.after_paths), (6, 5));
    // etc and jq are the same paths on both sides (same name, same hash here).
    assert_eq!((d.closure.paths_added, d.closure.paths_removed), (3, 4));
    assert!(!d.reboot_needed && d.reboot_reason.is_none());
    assert!(d.boot.iter().all(|b| !b.changed));
}

#[test]
fn a_new_kernel_needs_a_reboot() {
    let before = closure("sys-1", "linux-6.6.1", Some("linux-6.6.1"), &[]);
    let after = closure("sys-2", "linux-6.6.2", None, &[]);
    let d = compare(&before, &after);
    assert!(d.reboot_needed);
    assert_eq!(d.reboot_reason.as_deref(), Some("the new system differs from the booted one in its kernel"));
    assert_eq!(d.boot.iter().filter(|b| b.changed).map(|b| b.part.as_str()).collect::<Vec<_>>(), ["kernel"]);
}

#[test]
fn the_reboot_is_judged_against_the_booted_system() {
    // Booted 6.6.0, running (after a `boot`-less switch) 6.6.1, new 6.6.1:
    // the kernel does not change with the deploy, but a reboot is needed.
    let before = closure("sys-1", "linux-6.6.1", Some("linux-6.6.0"), &[]);
    let after = closure("sys-2", "linux-6.6.1", None, &[]);
    let d = compare(&before, &after);
    assert!(d.boot.iter().all(|b| !b.changed));
    assert!(d.reboot_needed, "{d:?}");
    // Booted 6.6.1, new 6.6.1: no reboot.
    let before = closure("sys-1", "linux-6.6.1", Some("linux-6.6.1"), &[]);
    assert!(!compare(&before, &after).reboot_needed);
}

#[test]
fn the_same_system_changes_nothing() {
    let c = closure("sys-1", "linux-6.6.1", Some("linux-6.6.1"), &[("hello-2.12", 1)]);
    let d = compare(&c, &c);
    assert!(d.unchanged && d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty());
    assert_eq!(d.closure.delta_bytes, 0);
}

#[test]
fn the_json_is_camel_case() {
    let before = closure("sys-1", "linux-6.6.1", Some("linux-6.6.1"), &[("hello-2.12", 100)]);
    let after = closure("sys-2", "linux-6.6.2", None, &[("hello-2.13", 90)]);
    let v =
        serde_json::to_value(MachineDiff { machine: "web".into(), diff: Some(compare(&before, &after)), error: None })
            .unwrap();
    assert_eq!(v["machine"], "web");
    assert_eq!(v["rebootNeeded"], true);
    assert_eq!(v["changed"][0]["sizeDeltaBytes"], -10);
    assert_eq!(v["closure"]["deltaBytes"], -10);
    assert_eq!(v["boot"][0]["part"], "kernel");
    assert!(v.get("error").is_none());
}

mod pipeline {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::build::{BuildError, Builder, SystemRef};
    use crate::exec::{Cmd, CopyOptions, Output};
    use crate::metadata::Machine;

    /// A machine that counts the commands it is asked to run and answers
    /// each with `answer` (exit 0).
    #[derive(Debug)]
    struct Counting {
        name: String,
        runs: AtomicUsize,
        answer: String,
    }

    #[async_trait]
    impl Executor for Counting {
        fn machine(&self) -> &str {
            &self.name
        }
        async fn run(&self, _cmd: &Cmd) -> Result<Output, ExecError> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Ok(Output { status: Some(0), stdout: self.answer.clone().into_bytes(), stderr: Vec::new() })
        }
        async fn copy_closure(&self, _: &str, _: &CopyOptions) -> Result<(), ExecError> {
            unreachable!("a diff copies nothing")
        }
        async fn reboot(&self) -> Result<(), ExecError> {
            unreachable!("a diff reboots nothing")
        }
    }

    #[derive(Debug)]
    struct FakeBuilder {
        fail_build: bool,
        built: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Builder for FakeBuilder {
        async fn instantiate(&self, machines: &[String]) -> Result<BTreeMap<String, SystemRef>, BuildError> {
            Ok(machines
                .iter()
                .map(|m| {
                    let out_path = format!("/nix/store/{}-nixos-system-{m}-missing", "0".repeat(32));
                    (m.clone(), SystemRef { drv_path: format!("{out_path}.drv"), out_path })
                })
                .collect())
        }
        async fn build(&self, systems: &[SystemRef]) -> Result<(), BuildError> {
            self.built.lock().unwrap().extend(systems.iter().map(|s| s.out_path.clone()));
            match self.fail_build {
                true => Err(BuildError::Build { machines: "web".into(), message: "builder failed".into() }),
                false => Ok(()),
            }
        }
    }

    fn reached(name: &str, answer: &str) -> (Reached, Arc<Counting>) {
        let machine = Machine {
            name: name.into(),
            hostname: None,
            services: vec![],
            metadata: serde_json::from_value(serde_json::json!({"role": "t", "rebootOrder": 0})).unwrap(),
        };
        let exec = Arc::new(Counting { name: name.into(), runs: AtomicUsize::new(0), answer: answer.into() });
        let reached = crate::reach::reach_with([&machine], |_| Ok::<_, ()>(exec.clone() as Arc<dyn Executor>)).unwrap();
        (reached.into_iter().next().unwrap(), exec)
    }

    #[tokio::test]
    async fn a_failed_build_reaches_no_machine() {
        let (web, exec) = reached("web", "");
        let builder = FakeBuilder { fail_build: true, built: Mutex::new(vec![]) };
        let mut stages = Vec::new();
        let e = fleet_diff_built(&builder, &[web], 4, &mut |s| stages.push(s)).await.unwrap_err();
        assert!(e.to_string().contains("builder failed"), "{e}");
        assert_eq!(stages, [Stage::Evaluating, Stage::Building]);
        assert_eq!(exec.runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn each_machine_is_read_once_and_a_failure_is_its_own() {
        let running = "/nix/store/s-sys\n-\n-\n-\n-\n-\n-\n--\n/nix/store/s-sys\n--\n10\n";
        let (web, web_exec) = reached("web", running);
        // db answers something that is no closure.
        let (db, db_exec) = reached("db", "hello\n");
        let builder = FakeBuilder { fail_build: false, built: Mutex::new(vec![]) };
        let mut stages = Vec::new();
        let diffs = fleet_diff_built(&builder, &[web, db], 4, &mut |s| stages.push(s)).await.unwrap();
        assert_eq!(stages, [Stage::Evaluating, Stage::Building, Stage::Reading]);
        assert_eq!(builder.built.lock().unwrap().len(), 2, "one build of both systems");
        assert_eq!(diffs.iter().map(|d| d.machine.as_str()).collect::<Vec<_>>(), ["db", "web"]);
        let db_error = diffs[0].error.as_deref().unwrap();
        assert!(db_error.starts_with("db: reading the closure of /run/current-system printed"), "{db_error}");
        // web's running system was read; its new one is not in this store.
        let web_error = diffs[1].error.as_deref().unwrap();
        let missing = format!("/nix/store/{}-nixos-system-web-missing", "0".repeat(32));
        assert_eq!(
            web_error,
            format!("web: its new system: local store: cannot read the closure of {missing}: lab: {missing} does not exist (exit 3)")
        );
        assert_eq!((web_exec.runs.load(Ordering::SeqCst), db_exec.runs.load(Ordering::SeqCst)), (1, 1));
    }
}
