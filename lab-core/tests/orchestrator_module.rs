//! nix/modules/lab-orchestrator.nix evaluated with nixpkgs' real
//! `lib.evalModules` (LAB_NIXPKGS_LIB, else the pinned shared copy): the
//! systemd unit it gives has least privilege that still works, and `update`
//! works for the flakes it accepts and is refused, when the module is
//! evaluated, for the ones lab's `--update` refuses.

use lab_core::orchestrate::FlakeUpdate;
use serde_json::{json, Value};

use lab_testkit::orchestrator_eval::eval;

fn enabled(flake: &str, update: bool) -> Value {
    json!({"enable": true, "flake": flake, "update": update})
}

#[test]
fn the_service_user_is_not_a_trusted_nix_user() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let result = eval(&lib, &enabled("git+https://git.example/lab", false), &json!({}));
    assert_eq!(result["failedAssertions"], json!([]));
    // Nothing in nix.conf: trusted-users would make the user root-equivalent.
    assert_eq!(result["nixSettings"], json!({}), "the module sets no nix.settings");
    let unit = &result["serviceConfig"];
    assert_eq!(unit["User"], "lab-orchestrator");
    assert_eq!(unit["Group"], "lab-orchestrator");
    // Hardening that the trust would have undone stays.
    for (key, value) in [
        ("NoNewPrivileges", json!(true)),
        ("ProtectSystem", json!("strict")),
        ("ProtectHome", json!(true)),
        ("PrivateTmp", json!(true)),
        ("PrivateDevices", json!(true)),
        ("RestrictSUIDSGID", json!(true)),
        ("RestrictNamespaces", json!(true)),
        ("CapabilityBoundingSet", json!("")),
        ("RestrictAddressFamilies", json!(["AF_UNIX", "AF_INET", "AF_INET6"])),
        ("StateDirectory", json!("lab-orchestrator")),
        ("CacheDirectory", json!("lab-orchestrator")),
    ] {
        assert_eq!(unit[key], value, "serviceConfig.{key}");
    }
    // Without update it writes nothing outside its own state and cache.
    assert_eq!(unit["ReadWritePaths"], json!([]));
    // nix always goes through the daemon, never a private store in $HOME.
    assert_eq!(result["environment"]["NIX_REMOTE"], "daemon");
    assert_eq!(result["environment"]["HOME"], "/var/lib/lab-orchestrator");
}

#[test]
fn update_with_a_local_flake_may_write_its_directory_and_nothing_else() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    for (flake, dir) in [("/srv/homelab", "/srv/homelab"), ("path:/srv/homelab", "/srv/homelab")] {
        let result = eval(&lib, &enabled(flake, true), &json!({}));
        assert_eq!(result["failedAssertions"], json!([]), "{flake}");
        let unit = &result["serviceConfig"];
        assert_eq!(unit["ReadWritePaths"], json!([dir]), "{flake}: flake.lock must be writable");
        assert_eq!(unit["ProtectSystem"], "strict", "{flake}: the rest stays read-only");
        let exec = unit["ExecStart"].as_str().unwrap();
        assert!(exec.ends_with(&format!("orchestrate --flake {flake} --goal boot --update")), "{exec}");
    }
    // The same local flake without update: read-only.
    let result = eval(&lib, &enabled("/srv/homelab", false), &json!({}));
    assert_eq!(result["serviceConfig"]["ReadWritePaths"], json!([]));
}

#[test]
fn update_with_a_remote_flake_is_refused_when_the_module_is_evaluated() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    for flake in ["git+https://git.example.org/homelab", "github:me/homelab", "git+file:///srv/homelab", "homelab"] {
        let result = eval(&lib, &enabled(flake, true), &json!({}));
        let failed = result["failedAssertions"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{flake}: {failed:?}");
        let message = failed[0].as_str().unwrap();
        assert!(
            message.starts_with("services.lab-orchestrator.update runs `nix flake update`")
                && message.contains(&format!("\"{flake}\" is not one"))
                && message.contains("set update = false"),
            "{message}"
        );
        // Without update the same flake is fine.
        assert_eq!(eval(&lib, &enabled(flake, false), &json!({}))["failedAssertions"], json!([]), "{flake}");
    }
}

/// The module accepts for `update` exactly the references lab's `--update`
/// accepts (given the directory holds a flake).
#[test]
fn the_module_and_lab_agree_on_what_update_accepts() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }").unwrap();
    let path = dir.path().display().to_string();
    let references = [
        path.clone(),
        format!("path:{path}"),
        format!("git+file://{path}"),
        format!("{path}?dir=sub"),
        format!("{path}#"),
        "github:me/homelab".to_string(),
        "https://example.org/homelab.tar.gz".to_string(),
    ];
    for reference in references {
        let lab_accepts = FlakeUpdate::new(&reference).is_ok();
        let module_accepts = eval(&lib, &enabled(&reference, true), &json!({}))["failedAssertions"] == json!([]);
        assert_eq!(module_accepts, lab_accepts, "{reference}: module accepts {module_accepts}, lab {lab_accepts}");
    }
}

#[test]
fn a_flake_hidden_by_protect_home_is_refused() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    for flake in ["/home/me/homelab", "/root/homelab", "path:/home/me/homelab"] {
        let result = eval(&lib, &enabled(flake, false), &json!({}));
        let failed = result["failedAssertions"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{flake}: {failed:?}");
        assert!(failed[0].as_str().unwrap().contains("ProtectHome"), "{failed:?}");
    }
    assert_eq!(eval(&lib, &enabled("/homelab", false), &json!({}))["failedAssertions"], json!([]));
}

#[test]
fn the_service_user_must_be_allowed_to_use_the_daemon() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let with_allowed = |users: Value| {
        let host = json!({"nix": {"settings": {"allowed-users": users}}});
        eval(&lib, &enabled("github:me/homelab", false), &host)["failedAssertions"].clone()
    };
    assert_eq!(with_allowed(json!(["*"])), json!([]));
    assert_eq!(with_allowed(json!(["lab-orchestrator"])), json!([]));
    assert_eq!(with_allowed(json!(["@lab-orchestrator"])), json!([]));
    let failed = with_allowed(json!(["@wheel"]));
    assert!(failed[0].as_str().unwrap().contains("allowed-users leaves out lab-orchestrator"), "{failed}");
    assert!(failed[0].as_str().unwrap().contains("needs no trusted-users"), "{failed}");
}

fn serving(serve: Value, textfile: Value) -> Value {
    json!({"flake": "github:me/homelab", "serve": serve, "textfile": textfile, "sshKeyFile": "/var/lib/lab-orchestrator/id"})
}

#[test]
fn serve_runs_lab_serve_on_loopback_by_default_without_the_orchestration_timer() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let result = eval(&lib, &serving(json!({"enable": true}), json!({})), &json!({}));
    assert_eq!(result["failedAssertions"], json!([]));
    // Only the server: enable (the scheduled deploys) stays off.
    assert_eq!(result["service"], Value::Null);
    assert_eq!(result["timer"], Value::Null);
    assert_eq!(result["users"], json!(["lab-orchestrator"]));
    let unit = &result["serveUnit"];
    let config = &unit["serviceConfig"];
    assert_eq!(
        config["ExecStart"],
        "/nix/store/00000000000000000000000000000000-lab/bin/lab serve --flake github:me/homelab --address 127.0.0.1 --port 9184 --interval 30 --ssh-option 'IdentityFile=/var/lib/lab-orchestrator/id'"
    );
    assert_eq!(config["LoadCredential"], json!([]));
    assert_eq!(unit["wantedBy"], json!(["multi-user.target"]));
    // The orchestrator's hardening, and its state: the dashboard shows its runs.
    for (key, value) in [
        ("User", json!("lab-orchestrator")),
        ("NoNewPrivileges", json!(true)),
        ("ProtectSystem", json!("strict")),
        ("ProtectHome", json!(true)),
        ("CapabilityBoundingSet", json!("")),
        ("Restart", json!("on-failure")),
        ("Type", json!("simple")),
    ] {
        assert_eq!(config[key], value, "serviceConfig.{key}");
    }
    assert_eq!(unit["environment"]["XDG_STATE_HOME"], "/var/lib/lab-orchestrator");
    assert_eq!(unit["environment"]["NIX_REMOTE"], "daemon");
    assert_eq!(result["firewallPorts"], json!([]));
    assert_eq!(result["textfileUnit"], Value::Null);
}

#[test]
fn serve_elsewhere_than_loopback_needs_a_token_passed_as_a_credential() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let open = eval(&lib, &serving(json!({"enable": true, "address": "0.0.0.0"}), json!({})), &json!({}));
    let failed = open["failedAssertions"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].as_str().unwrap().contains("serve.address is 0.0.0.0, not loopback: set serve.tokenFile"));
    for address in ["127.0.0.1", "127.0.0.53", "::1"] {
        let result = eval(&lib, &serving(json!({"enable": true, "address": address}), json!({})), &json!({}));
        assert_eq!(result["failedAssertions"], json!([]), "{address}");
    }
    let settings = json!({
        "enable": true, "address": "::", "port": 8080, "interval": 10,
        "tokenFile": "/run/secrets/lab-token", "openFirewall": true
    });
    let result = eval(&lib, &serving(settings, json!({})), &json!({}));
    assert_eq!(result["failedAssertions"], json!([]));
    let config = &result["serveUnit"]["serviceConfig"];
    let exec = config["ExecStart"].as_str().unwrap();
    assert!(
        exec.contains(" serve --flake github:me/homelab --address :: --port 8080 --interval 10 --token-file %d/token "),
        "{exec}"
    );
    // The token file's path reaches systemd, never its content nor the store.
    assert_eq!(config["LoadCredential"], json!(["token:/run/secrets/lab-token"]));
    assert_eq!(result["firewallPorts"], json!([8080]));
}

#[test]
fn textfile_writes_lab_status_for_node_exporter_on_a_timer() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let result = eval(&lib, &serving(json!({}), json!({"enable": true, "interval": "30s"})), &json!({}));
    assert_eq!(result["failedAssertions"], json!([]));
    assert_eq!(result["serveUnit"], Value::Null);
    let dir = "/var/lib/prometheus-node-exporter-text-files";
    let config = &result["textfileUnit"]["serviceConfig"];
    assert_eq!(
        config["ExecStart"],
        format!("/nix/store/00000000000000000000000000000000-lab/bin/lab status --flake github:me/homelab --prometheus {dir}/lab.prom --ssh-option 'IdentityFile=/var/lib/lab-orchestrator/id'")
    );
    // It may write that directory only; node_exporter, another user, reads the file.
    assert_eq!(config["ReadWritePaths"], json!([dir]));
    assert_eq!(config["ProtectSystem"], "strict");
    assert_eq!(config["UMask"], "0022");
    assert_eq!(config["SuccessExitStatus"], json!([1]));
    assert_eq!(result["textfileTimer"], json!({"OnBootSec": "1min", "OnUnitActiveSec": "30s"}));
    assert_eq!(result["tmpfiles"], json!([format!("d {dir} 0755 lab-orchestrator lab-orchestrator -")]));
    assert_eq!(result["nodeExporterFlags"], json!([format!("--collector.textfile.directory={dir}")]));
    // Another directory, registered by hand.
    let result = eval(
        &lib,
        &serving(json!({}), json!({"enable": true, "directory": "/srv/textfile", "registerWithNodeExporter": false})),
        &json!({}),
    );
    assert_eq!(result["textfileUnit"]["serviceConfig"]["ReadWritePaths"], json!(["/srv/textfile"]));
    assert_eq!(result["nodeExporterFlags"], json!([]));
}
