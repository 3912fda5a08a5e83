//! Fleet evaluation with real nix on the fixture fleets
//! (tests/fixtures/fleets, flake, hosts).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lab_core::eval::{evaluate, EvalError, EvalOptions, Evaluation, Source};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fleet(name: &str) -> Source {
    Source::File(fixtures().join("fleets").join(name))
}

fn jobs(n: usize) -> EvalOptions {
    EvalOptions { jobs: n, ..EvalOptions::default() }
}

fn names(evaluation: &Evaluation) -> Vec<&str> {
    evaluation.machines.keys().map(String::as_str).collect()
}

/// A copy of the fixture flake with lib.nix beside it, in a fresh directory.
fn flake_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("flake/flake.nix"), dir.path().join("flake.nix")).unwrap();
    std::fs::copy(fixtures().join("fleets/lib.nix"), dir.path().join("lib.nix")).unwrap();
    dir
}

#[test]
fn healthy_fleets_of_1_5_and_50() {
    for (file, count) in [("fleet-1.nix", 1), ("fleet-5.nix", 5), ("fleet-50.nix", 50)] {
        let evaluation = evaluate(&fleet(file), &jobs(0)).unwrap();
        assert_eq!(evaluation.machines.len(), count, "{file}");
        assert!(evaluation.is_clean() && evaluation.unmanaged.is_empty(), "{file}: {evaluation:?}");
    }
}

#[test]
fn chunking_does_not_change_the_result() {
    let one = evaluate(&fleet("fleet-50.nix"), &jobs(1)).unwrap();
    for n in [2, 3, 7] {
        assert_eq!(evaluate(&fleet("fleet-50.nix"), &jobs(n)).unwrap(), one, "jobs {n}");
    }
    let broken = evaluate(&fleet("broken.nix"), &jobs(1)).unwrap();
    assert_eq!(evaluate(&fleet("broken.nix"), &jobs(3)).unwrap(), broken);
}

#[test]
fn broken_hosts_are_reported_and_the_rest_returned() {
    let evaluation = evaluate(&fleet("broken.nix"), &jobs(2)).unwrap();
    assert_eq!(names(&evaluation), ["node-00", "node-01", "node-02", "node-03", "node-04"]);
    assert_eq!(evaluation.unmanaged, ["no-module"]);
    let failures: Vec<(&str, &str, Option<&str>)> =
        evaluation.failures.iter().map(|f| (f.machine.as_str(), f.message.as_str(), f.location.as_deref())).collect();
    let hosts = fixtures().join("fleets/hosts");
    let at = |file: &str, line: u32| format!("{}/{file}:{line}", hosts.display());
    assert_eq!(
        failures,
        [
            ("missing-attribute", "attribute 'rebootOrder' missing", Some(at("missing-attribute.nix", 7).as_str())),
            ("syntax-error", "syntax error, unexpected '}', expecting ';'", Some(at("syntax-error.nix", 5).as_str())),
            ("throws", "the option `lab.machine.role' is used but not defined", None),
        ]
    );
}

#[test]
fn a_throw_is_caught_without_failing_the_others() {
    let evaluation = evaluate(&fleet("broken-throw.nix"), &jobs(1)).unwrap();
    assert_eq!(names(&evaluation), ["node-00", "node-01", "node-02"]);
    assert_eq!(evaluation.failures.len(), 1);
    assert_eq!(evaluation.failures[0].machine, "throws");
}

#[test]
fn names_and_paths_reach_nix_as_data() {
    // One chunk holding the evil name and a broken host: the name goes
    // through the whole fleet read, the listing and the host-by-host read.
    let evaluation = evaluate(&fleet("evil-name.nix"), &jobs(1)).unwrap();
    assert_eq!(names(&evaluation), ["a\"; builtins.abort \"x"]);
    assert_eq!(evaluation.failures[0].machine, "broken");

    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("x\"; builtins.abort \"y ${toString 1}");
    std::fs::create_dir(&evil).unwrap();
    for file in ["fleet-5.nix", "lib.nix"] {
        std::fs::copy(fixtures().join("fleets").join(file), evil.join(file)).unwrap();
    }
    let evaluation = evaluate(&Source::File(evil.join("fleet-5.nix")), &jobs(1)).unwrap();
    assert_eq!(evaluation.machines.len(), 5);
}

#[test]
fn reads_a_flake_plain_and_git_tracked() {
    let dir = flake_dir();
    let evaluation = evaluate(&Source::Flake(dir.path().display().to_string()), &jobs(2)).unwrap();
    assert_eq!(evaluation, evaluate(&fleet("fleet-5.nix"), &jobs(1)).unwrap());

    let git = |args: &[&str]| {
        let status = std::process::Command::new("git").arg("-C").arg(dir.path()).args(args).status().unwrap();
        assert!(status.success());
    };
    git(&["init", "-q"]);
    git(&["add", "flake.nix", "lib.nix"]);
    let tracked = evaluate(&Source::Flake(dir.path().display().to_string()), &jobs(1)).unwrap();
    assert_eq!(tracked.machines, evaluation.machines);
}

#[test]
fn a_broken_flake_is_one_clear_error_at_the_users_file() {
    let dir = flake_dir();
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = { self }: {\n  nixosConfigurations = ;\n}; }\n").unwrap();
    let err = evaluate(&Source::Flake(dir.path().display().to_string()), &jobs(2)).unwrap_err();
    let EvalError::Fleet { location, .. } = &err else { panic!("{err:?}") };
    assert_eq!(location.as_deref(), Some(format!("{}/flake.nix:2", dir.path().display()).as_str()), "{err}");
}

#[test]
fn missing_sources_say_what_to_pass() {
    let missing = evaluate(&Source::Flake("/nonexistent/fleet".into()), &jobs(1)).unwrap_err();
    assert!(matches!(missing, EvalError::NoSuchFleet { .. }), "{missing:?}");
    let no_flake = evaluate(&Source::Flake(fixtures().join("fleets").display().to_string()), &jobs(1)).unwrap_err();
    assert!(no_flake.to_string().contains("has no flake.nix; pass --flake"), "{no_flake}");
    let syntax = evaluate(&fleet("syntax-error.nix"), &jobs(2)).unwrap_err();
    assert!(syntax.to_string().contains("syntax error"), "{syntax}");
    let not_a_fleet = evaluate(&fleet("not-a-fleet.nix"), &jobs(2)).unwrap_err();
    assert!(not_a_fleet.to_string().contains("must provide nixosConfigurations"), "{not_a_fleet}");
}

#[test]
fn an_evaluation_past_the_timeout_is_stopped() {
    let options = EvalOptions { timeout: Some(Duration::from_millis(300)), ..jobs(1) };
    let started = std::time::Instant::now();
    let err = evaluate(&fleet("slow.nix"), &options).unwrap_err();
    assert!(matches!(err, EvalError::Timeout(_)), "{err:?}");
    // slow.nix takes a minute or more: well under that, the timeout stopped it.
    assert!(started.elapsed() < Duration::from_secs(40), "{:?}", started.elapsed());
}

#[test]
fn reads_a_hosts_directory() {
    let source = Source::HostsDir { dir: fixtures().join("hosts"), nixpkgs: fixtures().join("fake-nixpkgs") };
    let evaluation = evaluate(&source, &jobs(2)).unwrap();
    assert_eq!(names(&evaluation), ["alpha", "beta", "gamma"]);
    assert_eq!(evaluation.machines["beta"].metadata.dependencies, ["alpha"]);
}

#[test]
fn reads_hosts_built_with_the_real_module() {
    let Some(_lib) = lab_testkit::nixpkgs_lib() else { return };
    let source =
        Source::HostsDir { dir: fixtures().join("hosts-real"), nixpkgs: fixtures().join("nixpkgs-evalmodules") };
    let evaluation = evaluate(&source, &jobs(2)).unwrap();
    assert_eq!(names(&evaluation), ["db", "web"]);
    assert_eq!(evaluation.unmanaged, ["bare"]);
    let web = &evaluation.machines["web"];
    assert_eq!(web.services, ["nginx"]);
    assert_eq!(web.target_host(), "web.lab.internal");
    assert_eq!(evaluation.machines["db"].services, ["postgresql"]);
}

mod cache {
    use super::*;

    /// A fleet in its own directory, with a cache directory of its own.
    fn setup() -> (tempfile::TempDir, Source, EvalOptions) {
        let dir = tempfile::tempdir().unwrap();
        for file in ["fleet-5.nix", "lib.nix"] {
            std::fs::copy(fixtures().join("fleets").join(file), dir.path().join(file)).unwrap();
        }
        let options = EvalOptions { cache_impure: true, cache_dir: Some(dir.path().join("cache")), ..jobs(2) };
        let source = Source::File(dir.path().join("fleet-5.nix"));
        (dir, source, options)
    }

    fn entry(options: &EvalOptions) -> PathBuf {
        let dir = options.cache_dir.as_ref().unwrap().join("eval");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(entries.len(), 1, "one entry per source: {entries:?}");
        entries.pop().unwrap()
    }

    #[test]
    fn a_second_run_is_a_hit_and_refresh_skips_it() {
        let (_dir, source, options) = setup();
        let cold = evaluate(&source, &options).unwrap();
        assert!(!cold.from_cache);
        let warm = evaluate(&source, &options).unwrap();
        assert!(warm.from_cache);
        assert_eq!(warm.machines, cold.machines);
        let refreshed = evaluate(&source, &EvalOptions { refresh: true, ..options }).unwrap();
        assert!(!refreshed.from_cache);
    }

    #[test]
    fn an_impure_source_is_evaluated_every_time_unless_asked() {
        let (_dir, source, options) = setup();
        let default = EvalOptions { cache_impure: false, ..options };
        assert!(!evaluate(&source, &default).unwrap().from_cache);
        assert!(!evaluate(&source, &default).unwrap().from_cache, "a --file source cached without --cache-impure");
    }

    #[test]
    fn touching_any_input_misses() {
        let (dir, source, options) = setup();
        evaluate(&source, &options).unwrap();
        let lib = dir.path().join("lib.nix");
        let text = std::fs::read_to_string(&lib).unwrap().replace("\"database\"", "\"db-server\"");
        std::fs::write(&lib, text).unwrap();
        let changed = evaluate(&source, &options).unwrap();
        assert!(!changed.from_cache);
        assert_eq!(changed.machines["node-00"].metadata.role, "db-server");
        // A new .nix file beside it counts too.
        std::fs::write(dir.path().join("extra.nix"), "{ }").unwrap();
        assert!(!evaluate(&source, &options).unwrap().from_cache);
        assert!(evaluate(&source, &options).unwrap().from_cache);
        entry(&options);
    }

    #[test]
    fn a_data_file_the_fleet_reads_counts() {
        // A fleet file that takes its roles from JSON beside it, as real
        // fleets read hosts.json, keys or addresses with readFile.
        let (dir, _, options) = setup();
        let fleet = dir.path().join("fleet.nix");
        std::fs::write(
            &fleet,
            "let lib = import ./lib.nix; roles = builtins.fromJSON (builtins.readFile ./roles.json); in\n\
             { nixosConfigurations.a = lib.system (lib.metadata { name = \"a\"; role = roles.a; }); }\n",
        )
        .unwrap();
        let roles = dir.path().join("roles.json");
        std::fs::write(&roles, r#"{ "a": "database" }"#).unwrap();
        let source = Source::File(fleet);
        assert_eq!(evaluate(&source, &options).unwrap().machines["a"].metadata.role, "database");
        assert!(evaluate(&source, &options).unwrap().from_cache);
        std::fs::write(&roles, r#"{ "a": "web-server" }"#).unwrap();
        let changed = evaluate(&source, &options).unwrap();
        assert!(!changed.from_cache, "a changed data file served a stale evaluation");
        assert_eq!(changed.machines["a"].metadata.role, "web-server");
        // The cache directory inside the fleet's directory is not an input.
        assert!(options.cache_dir.as_ref().unwrap().starts_with(dir.path()));
        assert!(evaluate(&source, &options).unwrap().from_cache);
    }

    /// A fleet file beside `lib.nix` taking machine a's role from `roles`
    /// (a path relative to it); the source and the roles file.
    fn reading(dir: &Path, roles: &str) -> (Source, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(fixtures().join("fleets/lib.nix"), dir.join("lib.nix")).unwrap();
        let fleet = dir.join("fleet.nix");
        std::fs::write(
            &fleet,
            format!(
                "let lib = import ./lib.nix; roles = builtins.fromJSON (builtins.readFile ./{roles}); in\n\
                 {{ nixosConfigurations.a = lib.system (lib.metadata {{ name = \"a\"; role = roles.a; }}); }}\n"
            ),
        )
        .unwrap();
        let path = dir.join(roles);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, r#"{ "a": "database" }"#).unwrap();
        (Source::File(fleet), path)
    }

    /// Evaluates twice (a miss, then a hit), changes the role, and checks
    /// the next evaluation sees it.
    fn assert_role_change_is_seen(source: &Source, roles: &Path, options: &EvalOptions) {
        assert_eq!(evaluate(source, options).unwrap().machines["a"].metadata.role, "database");
        assert!(evaluate(source, options).unwrap().from_cache);
        std::fs::write(roles, r#"{ "a": "web-server" }"#).unwrap();
        let changed = evaluate(source, options).unwrap();
        assert!(!changed.from_cache, "a changed data file served a stale evaluation");
        assert_eq!(changed.machines["a"].metadata.role, "web-server");
    }

    #[test]
    fn data_in_hidden_directories_and_behind_symlinks_counts() {
        let dir = tempfile::tempdir().unwrap();
        let options = EvalOptions { cache_impure: true, cache_dir: Some(dir.path().join("cache")), ..jobs(1) };
        let (source, roles) = reading(&dir.path().join("hidden"), ".data/roles.json");
        assert_role_change_is_seen(&source, &roles, &options);
        // roles.json is a link to a file outside the fleet's directory.
        let outside = dir.path().join("outside.json");
        let (source, roles) = reading(&dir.path().join("linked"), "roles.json");
        std::fs::rename(&roles, &outside).unwrap();
        std::os::unix::fs::symlink(&outside, &roles).unwrap();
        assert_role_change_is_seen(&source, &outside, &options);
    }

    #[test]
    fn a_tracked_file_outside_the_fleet_directory_counts() {
        // repo/sub/fleet.nix imports ../shared.nix, tracked in repo's git.
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let (source, _) = reading(&repo.join("sub"), "roles.json");
        let shared = repo.join("shared.nix");
        std::fs::write(&shared, "{ role = \"database\"; }").unwrap();
        let fleet = repo.join("sub/fleet.nix");
        std::fs::write(
            &fleet,
            "let lib = import ./lib.nix; in\n\
             { nixosConfigurations.a = lib.system (lib.metadata { name = \"a\"; role = (import ../shared.nix).role; }); }\n",
        )
        .unwrap();
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git").arg("-C").arg(&repo).args(args).status().unwrap();
            assert!(status.success());
        };
        git(&["init", "-q"]);
        git(&["add", "shared.nix", "sub"]);
        let options = EvalOptions { cache_impure: true, cache_dir: Some(dir.path().join("cache")), ..jobs(1) };
        assert_eq!(evaluate(&source, &options).unwrap().machines["a"].metadata.role, "database");
        assert!(evaluate(&source, &options).unwrap().from_cache);
        std::fs::write(&shared, "{ role = \"web-server\"; }").unwrap();
        let changed = evaluate(&source, &options).unwrap();
        assert!(!changed.from_cache, "a changed shared.nix served a stale evaluation");
        assert_eq!(changed.machines["a"].metadata.role, "web-server");
    }

    #[test]
    fn a_cache_directory_that_is_the_fleet_directory_hides_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (source, roles) = reading(dir.path(), "data/roles.json");
        let options = EvalOptions { cache_impure: true, cache_dir: Some(dir.path().to_path_buf()), ..jobs(1) };
        assert_role_change_is_seen(&source, &roles, &options);
    }

    #[test]
    fn a_named_pipe_beside_the_fleet_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let (source, _) = reading(dir.path(), "roles.json");
        let fifo = dir.path().join("control");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let options = EvalOptions { cache_impure: true, cache_dir: Some(dir.path().join("cache")), ..jobs(1) };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let first = evaluate(&source, &options).map(|e| e.from_cache);
            let second = evaluate(&source, &options).map(|e| e.from_cache);
            let _ = tx.send((first.ok(), second.ok()));
        });
        // Opening the pipe would wait for a writer forever.
        let result = rx.recv_timeout(Duration::from_secs(60)).expect("evaluation hung on a named pipe");
        assert_eq!(result, (Some(false), Some(true)));
    }

    #[test]
    fn a_corrupt_or_truncated_entry_is_ignored() {
        let (_dir, source, options) = setup();
        let cold = evaluate(&source, &options).unwrap();
        let entry = entry(&options);
        let bytes = std::fs::read(&entry).unwrap();
        std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
        let again = evaluate(&source, &options).unwrap();
        assert!(!again.from_cache);
        assert_eq!(again.machines, cold.machines);
        // Valid JSON that is not what was written: the hash line catches it.
        let text = std::fs::read_to_string(&entry).unwrap().replace("\"database\"", "\"tampered\"");
        std::fs::write(&entry, text).unwrap();
        let again = evaluate(&source, &options).unwrap();
        assert!(!again.from_cache);
        assert_eq!(again.machines, cold.machines);
    }

    #[test]
    fn a_git_flake_is_keyed_by_its_tracked_files() {
        let dir = flake_dir();
        let options = EvalOptions { cache_impure: true, cache_dir: Some(dir.path().join(".cache")), ..jobs(1) };
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git").arg("-C").arg(dir.path()).args(args).status().unwrap();
            assert!(status.success());
        };
        git(&["init", "-q"]);
        git(&["add", "flake.nix", "lib.nix"]);
        let source = Source::Flake(dir.path().display().to_string());
        assert!(!evaluate(&source, &options).unwrap().from_cache);
        // nix does not see untracked files, and neither does the key.
        std::fs::write(dir.path().join("notes.nix"), "{ }").unwrap();
        assert!(evaluate(&source, &options).unwrap().from_cache);
        // A tracked file's content counts, staged or not.
        let lib = dir.path().join("lib.nix");
        std::fs::write(&lib, std::fs::read_to_string(&lib).unwrap() + "\n").unwrap();
        assert!(!evaluate(&source, &options).unwrap().from_cache);
    }

    #[test]
    fn a_hosts_directory_is_keyed_by_the_modules_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let copy = |from: &str, to: &str| {
            std::fs::create_dir_all(dir.path().join(to).parent().unwrap()).unwrap();
            std::fs::copy(fixtures().join(from), dir.path().join(to)).unwrap();
        };
        for host in ["alpha", "beta", "gamma"] {
            copy(&format!("hosts/{host}/configuration.nix"), &format!("hosts/{host}/configuration.nix"));
        }
        copy("fleets/lib.nix", "fleets/lib.nix");
        copy("fake-nixpkgs/nixos/lib/eval-config.nix", "nixpkgs/nixos/lib/eval-config.nix");
        let source = Source::HostsDir { dir: dir.path().join("hosts"), nixpkgs: dir.path().join("nixpkgs") };
        let options = EvalOptions { cache_impure: true, cache_dir: Some(dir.path().join(".cache")), ..jobs(1) };
        assert_eq!(evaluate(&source, &options).unwrap().machines.len(), 3);
        assert!(evaluate(&source, &options).unwrap().from_cache);
        let lib = dir.path().join("fleets/lib.nix");
        std::fs::write(
            &lib,
            std::fs::read_to_string(&lib).unwrap().replace("targetUser = \"root\"", "targetUser = \"ops\""),
        )
        .unwrap();
        let changed = evaluate(&source, &options).unwrap();
        assert!(!changed.from_cache);
        assert_eq!(changed.machines["alpha"].metadata.target_user, "ops");
        let eval_config = dir.path().join("nixpkgs/nixos/lib/eval-config.nix");
        std::fs::write(&eval_config, std::fs::read_to_string(&eval_config).unwrap() + "\n").unwrap();
        assert!(!evaluate(&source, &options).unwrap().from_cache);
    }

    #[test]
    fn a_fleet_with_failures_is_not_cached() {
        let options =
            EvalOptions { cache_impure: true, cache_dir: Some(tempfile::tempdir().unwrap().keep()), ..jobs(1) };
        evaluate(&fleet("broken-throw.nix"), &options).unwrap();
        assert!(!evaluate(&fleet("broken-throw.nix"), &options).unwrap().from_cache);
        std::fs::remove_dir_all(options.cache_dir.unwrap()).unwrap();
    }
}

#[test]
fn fleet_settings_come_with_the_same_evaluation_and_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let options = EvalOptions { cache_impure: true, cache_dir: Some(cache.path().to_path_buf()), ..jobs(2) };
    let first = evaluate(&fleet("with-settings.nix"), &options).unwrap();
    let settings = &first.settings;
    assert_eq!(settings.max_parallel.map(usize::from), Some(3));
    assert_eq!(settings.max_unavailable_per_group.map(usize::from), Some(1));
    assert_eq!(settings.reboot_window.as_ref().unwrap().to_string(), "Sat 02:00-05:00");
    assert_eq!(settings.notify.command.as_deref().unwrap(), ["logger", "-t", "lab"]);
    assert_eq!(settings.ssh.options, ["ConnectTimeout=5"]);
    let second = evaluate(&fleet("with-settings.nix"), &options).unwrap();
    assert!(second.from_cache);
    assert_eq!(&second.settings, settings, "the cache keeps the settings");
    let plain = evaluate(&fleet("fleet-5.nix"), &jobs(1)).unwrap();
    assert_eq!(plain.settings, lab_core::settings::FleetSettings::default());
}

#[test]
fn broken_fleet_settings_are_one_clear_error() {
    let err = evaluate(&fleet("bad-settings.nix"), &jobs(1)).unwrap_err().to_string();
    assert!(err.contains("its `lab` settings fail to evaluate"), "{err}");
    let err = evaluate(&fleet("misspelt-settings.nix"), &jobs(1)).unwrap_err().to_string();
    assert!(err.contains("the fleet's lab settings: maxParalel: unknown field `maxParalel`"), "{err}");
}
