//! What evaluated is usable and cached even when other hosts failed: a
//! cached evaluation keeps its good machines, and the hosts that failed are
//! read again on each use (a failure may not last), with real nix. The
//! fleet reads the environment, which the cache key does not cover, to tell
//! a cached machine from a re-read one.

use lab_core::eval::{evaluate, EvalOptions, Source};

const FLEET: &str = r#"
let
  m = name: role: { config = { networking.hostName = name; lab.machine = { inherit role; rebootOrder = 0; targetHost = "${name}.lan"; }; }; };
  env = builtins.getEnv;
in {
  nixosConfigurations = {
    a = if env "LAB_TEST_A_FIXED" == "" then throw "a is broken for now" else m "a" "server";
    b = m "b" (if env "LAB_TEST_B_ROLE" == "" then "server" else env "LAB_TEST_B_ROLE");
  };
}
"#;

#[test]
fn good_machines_are_cached_and_failed_ones_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    std::fs::write(&file, FLEET).unwrap();
    let source = Source::File(file);
    let options = EvalOptions {
        jobs: 1,
        cache_dir: Some(dir.path().join("cache")),
        cache_impure: true,
        ..EvalOptions::default()
    };
    std::env::remove_var("LAB_TEST_A_FIXED");
    std::env::remove_var("LAB_TEST_B_ROLE");

    let cold = evaluate(&source, &options).unwrap();
    assert_eq!(cold.failures.iter().map(|f| f.machine.as_str()).collect::<Vec<_>>(), ["a"]);
    assert!(cold.failures[0].message.contains("a is broken for now"), "{:?}", cold.failures);
    assert_eq!(cold.machines.keys().collect::<Vec<_>>(), ["b"]);

    // Still failing: the failure is read again (nix's message is back), b
    // comes from the cache (its role does not follow the environment).
    std::env::set_var("LAB_TEST_B_ROLE", "changed");
    let warm = evaluate(&source, &options).unwrap();
    assert!(warm.failures[0].message.contains("a is broken for now"), "{:?}", warm.failures);
    assert_eq!(warm.machines["b"].metadata.role, "server");

    // a is fixed without a change the key sees: read again, it joins b.
    std::env::set_var("LAB_TEST_A_FIXED", "1");
    let fixed = evaluate(&source, &options).unwrap();
    assert!(fixed.failures.is_empty(), "{:?}", fixed.failures);
    assert_eq!(fixed.machines.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(fixed.machines["b"].metadata.role, "server");
    // Now whole, the entry answers with no nix at all.
    std::env::remove_var("LAB_TEST_A_FIXED");
    let whole = evaluate(&source, &options).unwrap();
    assert!(whole.from_cache && whole.failures.is_empty());
    assert_eq!(whole.machines.keys().collect::<Vec<_>>(), ["a", "b"]);

    // --refresh evaluates everything again.
    let refreshed = evaluate(&source, &EvalOptions { refresh: true, ..options.clone() }).unwrap();
    assert_eq!(refreshed.machines["b"].metadata.role, "changed");
    assert_eq!(refreshed.failures.len(), 1);
}
