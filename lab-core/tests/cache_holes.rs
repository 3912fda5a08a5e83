//! The evaluation cache is never wrong: each way an impure evaluation
//! (`--file`, `--hosts-dir`) reads something outside what a key of its
//! files can see (issue 17, point 1). Each case evaluates with the cache on,
//! changes what the fleet reads, and checks that the next read gives what a
//! fresh nix gives, not the old result. Real nix throughout; every one of
//! these served the old result with the cache lab had before (it keyed
//! `--file` and `--hosts-dir` sources by their files).
//!
//! The cases change the process environment (getEnv, NIX_PATH, NIX_CONFIG),
//! so they run one at a time (`serial`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use lab_core::eval::{evaluate, EvalOptions, Evaluation, Source};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One host `a` on the original design's options set directly, its role
/// given by the Nix expression `role`.
fn fleet(role: &str) -> String {
    format!(
        "{{ nixosConfigurations.a = {{ config = {{ networking.hostName = \"a\"; \
         lab.machine = {{ role = {role}; rebootOrder = 0; targetHost = \"a.lan\"; }}; }}; }}; }}\n"
    )
}

/// The cache under `dir`, one nix process: what a user gets by default.
fn options(dir: &Path) -> EvalOptions {
    EvalOptions { jobs: 1, cache_dir: Some(dir.join("cache")), ..EvalOptions::default() }
}

fn role(evaluation: &Evaluation) -> &str {
    &evaluation.machines["a"].metadata.role
}

/// Reads `source` twice, runs `change`, and checks the next read gives
/// `after` (the first read gave `before`).
fn stays_current(source: &Source, options: &EvalOptions, before: &str, after: &str, change: impl FnOnce()) {
    assert_eq!(role(&evaluate(source, options).unwrap()), before);
    assert_eq!(role(&evaluate(source, options).unwrap()), before);
    change();
    let changed = evaluate(source, options).unwrap();
    assert_eq!(role(&changed), after, "the cache served the old result");
    assert!(!changed.from_cache, "an impure source was answered from the cache");
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn run(program: &str, dir: &Path, args: &[&str]) {
    let status = Command::new(program).current_dir(dir).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}");
}

#[test]
fn get_env() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    write(&file, &fleet("builtins.getEnv \"LAB_HOLE_ROLE\""));
    std::env::set_var("LAB_HOLE_ROLE", "database");
    stays_current(&Source::File(file), &options(dir.path()), "database", "web", || {
        std::env::set_var("LAB_HOLE_ROLE", "web")
    });
    std::env::remove_var("LAB_HOLE_ROLE");
}

#[test]
fn a_file_outside_the_fleet_directory_read_with_read_file_or_import() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet/fleet.nix");
    write(&file, &fleet("builtins.readFile ../outside.txt + (import ../outside.nix)"));
    write(&dir.path().join("outside.txt"), "data");
    write(&dir.path().join("outside.nix"), "\"base\"");
    let source = Source::File(file);
    stays_current(&source, &options(dir.path()), "database", "webbase", || {
        write(&dir.path().join("outside.txt"), "web")
    });
    stays_current(&source, &options(dir.path()), "webbase", "webserver", || {
        write(&dir.path().join("outside.nix"), "\"server\"")
    });
}

#[test]
fn a_directory_symlink_inside_the_fleet_directory() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet/fleet.nix");
    write(&file, &fleet("builtins.readFile ./data/role"));
    write(&dir.path().join("real/role"), "database");
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("fleet/data")).unwrap();
    stays_current(&Source::File(file), &options(dir.path()), "database", "web", || {
        write(&dir.path().join("real/role"), "web")
    });
}

#[test]
fn an_untracked_file_outside_the_fleet_directory_in_a_git_tree() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let file = repo.join("sub/fleet.nix");
    write(&file, &fleet("import ../untracked.nix"));
    write(&repo.join("untracked.nix"), "\"database\"");
    run("git", &repo, &["init", "-q"]);
    run("git", &repo, &["add", "sub/fleet.nix"]);
    stays_current(&Source::File(file), &options(dir.path()), "database", "web", || {
        write(&repo.join("untracked.nix"), "\"web\"")
    });
}

fn fake_nixpkgs(into: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-nixpkgs/nixos/lib/eval-config.nix");
    write(&into.join("nixos/lib/eval-config.nix"), &std::fs::read_to_string(from).unwrap());
}

/// A hosts directory whose one host `a` takes its role from `role`.
fn host(hosts: &Path, role: &str) {
    write(
        &hosts.join("a/configuration.nix"),
        &format!("{{ ... }}: {{ networking.hostName = \"a\"; lab.machine = {{ role = {role}; rebootOrder = 0; targetHost = \"a.lan\"; }}; }}\n"),
    );
}

#[test]
fn hosts_dir_files_two_levels_up() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("top/fleet/hosts");
    host(&hosts, "import ../../../common.nix");
    write(&dir.path().join("top/common.nix"), "\"database\"");
    fake_nixpkgs(&dir.path().join("nixpkgs"));
    let source = Source::HostsDir { dir: hosts, nixpkgs: dir.path().join("nixpkgs") };
    stays_current(&source, &options(dir.path()), "database", "web", || {
        write(&dir.path().join("top/common.nix"), "\"web\"")
    });
}

#[test]
fn a_non_nix_file_of_a_nixpkgs_outside_the_store() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("fleet/hosts");
    host(&hosts, "builtins.readFile (pkgsPath + \"/role.txt\")");
    // The host reads the nixpkgs' data file through an argument, as NixOS
    // modules read nixpkgs' own data (e.g. JSON tables).
    let nixpkgs = dir.path().join("nixpkgs");
    fake_nixpkgs(&nixpkgs);
    let config = hosts.join("a/configuration.nix");
    let text = std::fs::read_to_string(&config).unwrap();
    write(&config, &format!("let pkgsPath = \"{}\"; in {text}", nixpkgs.display()));
    write(&nixpkgs.join("role.txt"), "database");
    let source = Source::HostsDir { dir: hosts, nixpkgs: nixpkgs.clone() };
    stays_current(&source, &options(dir.path()), "database", "web", || write(&nixpkgs.join("role.txt"), "web"));
}

#[test]
fn nix_path_through_a_moved_symlink() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet/fleet.nix");
    write(&file, &fleet("import <labchannel/role.nix>"));
    write(&dir.path().join("v1/role.nix"), "\"database\"");
    write(&dir.path().join("v2/role.nix"), "\"web\"");
    let current = dir.path().join("current");
    std::os::unix::fs::symlink(dir.path().join("v1"), &current).unwrap();
    std::env::set_var("NIX_PATH", format!("labchannel={}", current.display()));
    // What a channel update does: the link moves, NIX_PATH stays the same.
    stays_current(&Source::File(file), &options(dir.path()), "database", "web", || {
        let next = dir.path().join("next");
        std::os::unix::fs::symlink(dir.path().join("v2"), &next).unwrap();
        std::fs::rename(&next, &current).unwrap();
    });
    std::env::remove_var("NIX_PATH");
}

#[test]
fn nix_config() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    // `system` is a nix setting the evaluation sees.
    write(&file, &fleet("builtins.currentSystem"));
    std::env::set_var("NIX_CONFIG", "system = x86_64-linux");
    stays_current(&Source::File(file), &options(dir.path()), "x86_64-linux", "aarch64-linux", || {
        std::env::set_var("NIX_CONFIG", "system = aarch64-linux")
    });
    std::env::remove_var("NIX_CONFIG");
}

#[test]
fn an_unpinned_fetch_tarball() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("role.tar.gz");
    let pack = |role: &str| {
        write(&dir.path().join("src/role/default.nix"), &format!("\"{role}\""));
        run("tar", &dir.path().join("src"), &["-czf", tarball.to_str().unwrap(), "role"]);
    };
    pack("database");
    let file = dir.path().join("fleet/fleet.nix");
    write(&file, &fleet(&format!("import (builtins.fetchTarball \"file://{}\")", tarball.display())));
    // nix's own download cache would otherwise answer for an hour; lab's
    // cache must not answer longer than nix does.
    std::env::set_var("NIX_CONFIG", "tarball-ttl = 0");
    stays_current(&Source::File(file), &options(dir.path()), "database", "web", || pack("web"));
    std::env::remove_var("NIX_CONFIG");
}

#[test]
fn current_time() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    write(&file, &fleet("\"t\" + toString builtins.currentTime"));
    let source = Source::File(file);
    let first = evaluate(&source, &options(dir.path())).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = evaluate(&source, &options(dir.path())).unwrap();
    assert_ne!(role(&first), role(&second), "the cache served the time of the first read");
}

/// lab's module, nixpkgs' lib and the NixOS stub the module tests use.
fn module_fleet(dir: &Path, lib: &Path) -> PathBuf {
    let module = dir.join("lab/nix/modules/lab-machine.nix");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nix/modules/lab-machine.nix");
    write(&module, &std::fs::read_to_string(ours).unwrap());
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/module/nixos-stub.nix");
    let file = dir.join("fleet/fleet.nix");
    write(
        &file,
        &format!(
            "let lib = import {lib}; in {{ nixosConfigurations.a = lib.evalModules {{ modules = [ {stub} {module} \
             {{ networking.hostName = \"a\"; lab.machine = {{ role = \"db\"; rebootOrder = 0; }}; }} ]; }}; }}\n",
            lib = lib.display(),
            stub = stub.display(),
            module = module.display(),
        ),
    );
    file
}

#[test]
fn labs_module_edited_in_place() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let source = Source::File(module_fleet(dir.path(), &lib));
    let options = options(dir.path());
    let user = |e: Evaluation| e.machines["a"].metadata.target_user.clone();
    assert_eq!(user(evaluate(&source, &options).unwrap()), "root");
    assert_eq!(user(evaluate(&source, &options).unwrap()), "root");
    // A new lab installed at the same path, with another default.
    let module = dir.path().join("lab/nix/modules/lab-machine.nix");
    let text = std::fs::read_to_string(&module).unwrap();
    assert!(text.contains("default = \"root\";"));
    write(&module, &text.replace("default = \"root\";", "default = \"ops\";"));
    assert_eq!(user(evaluate(&source, &options).unwrap()), "ops", "the cache served the old module's default");
}

/// A git flake whose inputs are local paths: lab's module (a copy) and
/// nixpkgs' lib; returns the flake's directory.
fn module_flake(dir: &Path, lib: &Path) -> PathBuf {
    let module = dir.join("lab/lab-machine.nix");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nix/modules/lab-machine.nix");
    write(&module, &std::fs::read_to_string(ours).unwrap());
    let flake = dir.join("flake");
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/module/nixos-stub.nix");
    write(&flake.join("nixos-stub.nix"), &std::fs::read_to_string(stub).unwrap());
    write(
        &flake.join("flake.nix"),
        &format!(
            "{{\n  inputs.labmod = {{ url = \"path:{}\"; flake = false; }};\n  inputs.nixlib = {{ url = \"path:{}\"; flake = false; }};\n  \
             outputs = {{ self, labmod, nixlib }}: let lib = import \"${{nixlib}}\"; in {{\n    \
             nixosConfigurations.a = lib.evalModules {{ modules = [ ./nixos-stub.nix \"${{labmod}}/lab-machine.nix\" ./a.nix ]; }};\n  }};\n}}\n",
            module.parent().unwrap().display(),
            lib.display()
        ),
    );
    write(
        &flake.join("a.nix"),
        "{ networking.hostName = \"a\"; lab.machine = { role = \"db\"; rebootOrder = 0; }; }\n",
    );
    run("git", &flake, &["init", "-q"]);
    run("git", &flake, &["add", "."]);
    flake
}

#[test]
fn flakes_are_cached_by_what_nix_locks() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let flake = module_flake(dir.path(), &lib);
    let source = Source::Flake(flake.display().to_string());
    let options = options(dir.path());
    let read = || evaluate(&source, &options).unwrap();

    // No flake.lock yet: nix 2.8's getFlake refuses to lock inputs (newer
    // nix locks them afresh each time; lab then does not cache, see
    // cache::all_inputs_locked).
    assert!(evaluate(&source, &options).is_err());

    run("nix", &flake, &["--extra-experimental-features", "nix-command flakes", "flake", "lock"]);
    run("git", &flake, &["add", "flake.lock"]);
    assert_eq!(read().machines["a"].metadata.role, "db");
    assert!(read().from_cache, "a locked flake is cached");

    // An edit of a tracked file (not committed) is a miss.
    write(
        &flake.join("a.nix"),
        "{ networking.hostName = \"a\"; lab.machine = { role = \"web\"; rebootOrder = 0; }; }\n",
    );
    let changed = read();
    assert!(!changed.from_cache);
    assert_eq!(changed.machines["a"].metadata.role, "web");
    assert!(read().from_cache);
    // Untracked files are not part of the flake: still a hit.
    write(&flake.join("notes.txt"), "x");
    assert!(read().from_cache);
    // Nix settings change the key.
    std::env::set_var("NIX_CONFIG", "tarball-ttl = 1");
    assert!(!read().from_cache, "NIX_CONFIG is part of the key");
    std::env::remove_var("NIX_CONFIG");
    // One entry per source: back to the old settings is one more miss.
    assert!(!read().from_cache);
    assert!(read().from_cache);

    // lab's module edited in place behind a locked path input: nix keeps the
    // locked copy until `nix flake update`, and the cache answers exactly as
    // a fresh evaluation does.
    let module = dir.path().join("lab/lab-machine.nix");
    let text = std::fs::read_to_string(&module).unwrap();
    write(&module, &text.replace("default = \"root\";", "default = \"ops\";"));
    let cached = read();
    let fresh = evaluate(&source, &EvalOptions { refresh: true, ..options.clone() }).unwrap();
    assert_eq!(cached.machines, fresh.machines, "the cache and nix agree");
    run("nix", &flake, &["--extra-experimental-features", "nix-command flakes", "flake", "update"]);
    let updated = read();
    assert!(!updated.from_cache, "a new lock is a new key");
    assert_eq!(updated.machines["a"].metadata.target_user, "ops");
}
