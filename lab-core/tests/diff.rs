//! The diff of two real nix-built systems (tests/fixtures/diff/systems.nix)
//! read from the local store with the same script lab runs on a machine:
//! the known packages added, removed and changed, the kernel change, sizes
//! as nix-store reports them.

use std::path::Path;
use std::process::Command;

use lab_core::diff::{closure, compare, Package, VersionChange};
use lab_core::exec::LocalExecutor;

fn build(dir: &Path, generation: u32) -> Option<String> {
    build_fixture(dir, "systems.nix", generation)
}

fn build_fixture(dir: &Path, file: &str, generation: u32) -> Option<String> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diff").join(file);
    let link = dir.join(format!("{file}-gen{generation}"));
    let out = Command::new("nix-build")
        .arg(&fixture)
        .args(["--arg", "generation", &generation.to_string(), "--no-build-output", "-o"])
        .arg(&link)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(String::from_utf8(out.stdout).unwrap().trim().to_string()),
        Ok(out) => panic!("nix-build failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => {
            lab_testkit::missing("nix-build", "install Nix (the tests build real store paths)");
            None
        }
    }
}

fn nar_size(path: &str) -> u64 {
    let out = Command::new("nix-store").args(["--query", "--size", path]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn two_built_systems_differ_in_their_known_packages_and_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(gen1), Some(gen2)) = (build(dir.path(), 1), build(dir.path(), 2)) else { return };
    let local = LocalExecutor::new("controller");
    let before = closure::read(&local, &gen1, None).await.unwrap();
    // Read through the out-link: the script resolves it to the store path.
    let after = closure::read(&local, dir.path().join("systems.nix-gen2").to_str().unwrap(), None).await.unwrap();
    assert_eq!((before.system.as_str(), after.system.as_str()), (gen1.as_str(), gen2.as_str()));
    assert_eq!(before.paths.len(), 8, "{before:?}");
    assert_eq!(before.size(), before.paths.keys().map(|p| nar_size(p)).sum::<u64>());

    let d = compare(&before, &after);
    let names = |list: &[Package]| list.iter().map(|p| (p.name.clone(), p.versions.clone())).collect::<Vec<_>>();
    assert_eq!(names(&d.added), [("ripgrep".to_string(), vec!["14.0".to_string()])]);
    assert_eq!(names(&d.removed), [("curl".to_string(), vec!["8.0".to_string()])]);
    let changed: Vec<(&str, &[String], &[String])> = d
        .changed
        .iter()
        .map(|VersionChange { name, before, after, .. }| (name.as_str(), &before[..], &after[..]))
        .collect();
    // The kernel and its modules are the package linux; jq and the initrd are the same paths.
    assert_eq!(
        changed,
        [
            ("hello", &["2.12".to_string()][..], &["2.12.1".to_string()][..]),
            ("linux", &["6.6.1".to_string()][..], &["6.6.2".to_string()][..]),
        ]
    );
    let hello = &d.changed[0];
    let size =
        |p: &str| before.paths.iter().chain(&after.paths).find(|(k, _)| k.ends_with(p)).map(|(_, s)| *s).unwrap();
    assert_eq!(hello.size_delta_bytes, size("-hello-2.12.1") as i64 - size("-hello-2.12") as i64);
    assert!(hello.size_delta_bytes > 0, "the new hello's file is longer: {hello:?}");
    assert_eq!(d.closure.delta_bytes, after.size() as i64 - before.size() as i64);
    // Gone: curl, curl-bin, hello, linux, modules, gen1; new: ripgrep, hello, linux, modules, gen2.
    assert_eq!((d.closure.paths_removed, d.closure.paths_added), (6, 5));

    let boot: Vec<(&str, bool)> = d.boot.iter().map(|b| (b.part.as_str(), b.changed)).collect();
    assert_eq!(boot, [("kernel", true), ("initrd", false), ("kernel-modules", true)]);
    assert!(d.boot[0].after.as_deref().unwrap().ends_with("-linux-6.6.2/file"), "{:?}", d.boot[0]);
    assert!(d.reboot_needed);
    assert_eq!(
        d.reboot_reason.as_deref(),
        Some("the new system differs from the booted one in its kernel, kernel-modules")
    );

    // The same system against itself: nothing changes, no reboot.
    let same = compare(&after, &after);
    assert!(same.unchanged && same.changed.is_empty() && !same.reboot_needed);
}

#[tokio::test]
async fn a_path_that_is_not_there_is_an_error_naming_the_machine() {
    let local = LocalExecutor::new("controller");
    let e = closure::read(&local, "/nix/store/00000000000000000000000000000000-missing", None).await.unwrap_err();
    let missing = "/nix/store/00000000000000000000000000000000-missing";
    assert_eq!(
        e.to_string(),
        format!("controller: cannot read the closure of {missing}: lab: {missing} does not exist (exit 3)")
    );
}

#[tokio::test]
async fn a_nixos_sized_closure_is_read_and_compared_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(gen1), Some(gen2)) = (build_fixture(dir.path(), "many.nix", 1), build_fixture(dir.path(), "many.nix", 2))
    else {
        return;
    };
    let local = LocalExecutor::new("controller");
    let started = std::time::Instant::now();
    let before = closure::read(&local, &gen1, None).await.unwrap();
    let after = closure::read(&local, &gen2, None).await.unwrap();
    let d = compare(&before, &after);
    eprintln!("2 closures of 2,001 paths read and compared in {:?}", started.elapsed());
    assert_eq!((before.paths.len(), after.paths.len()), (2001, 2001));
    assert!(d.added.is_empty() && d.removed.is_empty(), "{:?} {:?}", d.added, d.removed);
    assert_eq!(d.changed.len(), 200);
    assert!(d.changed.iter().all(|c| c.before == ["1.0"] && c.after == ["1.1"]), "{:?}", &d.changed[..3]);
    assert_eq!(d.changed[0].name, "pkg0");
    assert_eq!((d.closure.paths_added, d.closure.paths_removed), (201, 201));
    // No kernel in either: nothing changes at boot, no reboot.
    assert!(d.boot.iter().all(|b| b.before.is_none() && b.after.is_none() && !b.changed));
    assert!(!d.reboot_needed);
}
