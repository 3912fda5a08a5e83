//! The evaluation cache is private and holds no credentials in clear: its
//! directory is 0700, its entries 0600, and an evaluation whose health
//! checks carry credentials is never written to it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lab_core::eval::{evaluate, EvalOptions, Source};
use lab_core::metadata::HealthCheck;

fn fleet(dir: &Path, health_check: &str) -> Source {
    let file = dir.join("fleet.nix");
    let text = format!(
        "{{ nixosConfigurations.web.config.lab.metadata = {{ role = \"web\"; rebootOrder = 0; healthChecks = [ {health_check} ]; }}; }}"
    );
    std::fs::write(&file, text).unwrap();
    Source::File(file)
}

fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(cache.join("eval")) {
        Ok(dir) => dir.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn entries_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let source = fleet(
        dir.path(),
        r#"{ type = "http"; url = "http://localhost/health"; headers = { Accept = "text/plain"; }; }"#,
    );
    let options = EvalOptions { cache_impure: true, cache_dir: Some(cache.clone()), ..EvalOptions::default() };
    evaluate(&source, &options).unwrap();
    let written = entries(&cache);
    assert_eq!(written.len(), 1, "an evaluation without credentials is cached: {written:?}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&written[0]), 0o600);
    assert_eq!(mode(&cache.join("eval")), 0o700);
}

#[test]
fn credentials_never_reach_the_cache() {
    for check in [
        r#"{ type = "http"; url = "http://localhost/health"; headers = { Authorization = "Bearer s3cret-token"; }; }"#,
        r#"{ type = "http"; url = "http://admin:s3cret-token@localhost/health"; }"#,
        r#"{ type = "http"; url = "http://localhost/health?token=s3cret-token"; }"#,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let source = fleet(dir.path(), check);
        let options = EvalOptions { cache_impure: true, cache_dir: Some(cache.clone()), ..EvalOptions::default() };
        for _ in 0..2 {
            // Read in full each time, secret included (lab needs it to run the check).
            let evaluation = evaluate(&source, &options).unwrap();
            let HealthCheck::Http { url, headers, .. } = &evaluation.machines["web"].metadata.health_checks[0] else {
                panic!("an http check")
            };
            assert!(url.contains("s3cret-token") || headers.values().any(|v| v.contains("s3cret-token")), "{check}");
        }
        for entry in entries(&cache) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            assert!(!text.contains("s3cret-token"), "{check}: the secret is in {}", entry.display());
        }
    }
}
