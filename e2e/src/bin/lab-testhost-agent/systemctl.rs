//! The `systemctl` and `reboot` stand-ins.
//!
//! Supported: `reboot` (and `systemctl reboot`), `systemctl start|stop|
//! restart|is-active UNIT…` for the supervised services (`sshd`/`ssh`,
//! `lab-test-agent`) and for transient units and timers made by the
//! `systemd-run` stand-in, `is-system-running` (always `running`: a host
//! that answers is booted) and `daemon-reload` (nothing to reload). Options
//! such as `-q`, `--quiet`, `--no-block`, `--no-ask-password` are accepted;
//! only `--quiet` changes anything (no state printed). Exit codes follow
//! systemctl: 0 ok, 3 not active, 5 unit not loaded.

use crate::{control, init, systemd_run, Host};

/// Asks init to reboot; returns at once, like `systemctl reboot` (the
/// session then drops as the host goes down).
pub fn reboot(host: &Host, by: &str) -> i32 {
    host.log("reboot-requested", &[("by", by)]);
    match control::request(host, "reboot") {
        Ok(answer) if answer.starts_with("ok") => 0,
        Ok(answer) => {
            eprintln!("Failed to reboot: {answer}");
            1
        }
        Err(e) => {
            eprintln!("Failed to reboot: {e}");
            1
        }
    }
}

/// `systemctl ARGS…`.
pub fn run(host: &Host, args: &[String]) -> i32 {
    let quiet = args.iter().any(|a| a == "-q" || a == "--quiet");
    let words: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    let Some((&verb, units)) = words.split_first() else {
        eprintln!("systemctl (lab test host): a verb is required");
        return 1;
    };
    match verb {
        "reboot" => reboot(host, "systemctl"),
        "is-system-running" => {
            if !quiet {
                println!("running");
            }
            0
        }
        "daemon-reload" => 0,
        "start" | "stop" | "restart" | "is-active" if !units.is_empty() => {
            let mut code = 0;
            for unit in units {
                let c = unit_verb(host, verb, unit, quiet);
                code = code.max(c);
            }
            code
        }
        _ => {
            eprintln!("systemctl (lab test host): unsupported: {}", args.join(" "));
            1
        }
    }
}

fn unit_verb(host: &Host, verb: &str, unit: &str, quiet: bool) -> i32 {
    if init::is_service(unit) {
        return match (verb, control::request(host, &format!("{verb} {unit}"))) {
            ("is-active", Ok(answer)) => {
                let state = answer.trim_start_matches("ok ").to_string();
                if !quiet {
                    println!("{state}");
                }
                if state == "active" {
                    0
                } else {
                    3
                }
            }
            (_, Ok(answer)) if answer.starts_with("ok") => 0,
            (_, Ok(answer)) => {
                eprintln!("{}", answer.trim_start_matches("err "));
                1
            }
            (_, Err(e)) => {
                eprintln!("Failed to {verb} {unit}: {e}");
                1
            }
        };
    }
    match verb {
        "is-active" => {
            let state = systemd_run::unit_state(unit);
            if !quiet {
                println!("{state}");
            }
            if state == "active" {
                0
            } else {
                3
            }
        }
        "stop" => {
            if systemd_run::stop(host, unit) {
                0
            } else {
                eprintln!("Failed to stop {unit}: Unit {unit} not loaded.");
                5
            }
        }
        _ => {
            eprintln!("Failed to {verb} {unit}: Unit {unit} not found.");
            5
        }
    }
}
