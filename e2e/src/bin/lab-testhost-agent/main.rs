//! `lab-testhost-agent`: everything a lab test host runs, in one binary.
//!
//! - `init HOST_DIR`: the host's init (run by the harness inside the host's
//!   fresh network, mount and UTS namespaces): sets up the host's private
//!   mounts, boots (new boot id, /run/booted-system, activation), supervises
//!   sshd and the agent service, and implements reboot.
//! - `serve`: the agent service: GET /health on port 80, a TCP echo service
//!   on port 5432.
//! - `delay MS HOST PORT`: an ssh ProxyCommand adding MS of latency each
//!   way (a slow link; see `HostSpec::latency`).
//! - `tool HOST_DIR NAME ARGS…`: the stand-in commands of the host
//!   (`reboot`, `systemctl`, `systemd-run`) and the helpers a test system's
//!   store path calls (`activate`, `switch-to-configuration`); the host's
//!   /usr/local/bin holds one-line wrappers that call these.

mod activate;
mod control;
mod delay;
mod init;
mod procs;
mod serve;
mod systemctl;
mod systemd_run;

use std::path::PathBuf;
use std::process::ExitCode;

use lab_e2e::hostlog;
use lab_e2e::layout::HostDir;

/// What a tool needs: its host's directory and name, for logging.
pub struct Host {
    /// The host's directory on the controller (visible inside the host).
    pub dir: HostDir,
    /// The host's name, as written in its log.
    pub name: String,
}

impl Host {
    fn open(dir: PathBuf) -> Host {
        let dir = HostDir::new(dir);
        let name = dir.name();
        Host { dir, name }
    }

    /// Appends an event to the host's log; a failure to log is reported on
    /// stderr but never stops the action (the test will notice the gap).
    pub fn log(&self, event: &str, fields: &[(&str, &str)]) {
        if let Err(e) = hostlog::append(&self.dir.log(), &self.name, event, fields) {
            eprintln!("lab-testhost-agent: cannot log {event}: {e}");
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("init") if args.len() == 2 => init::run(Host::open(args[1].clone().into())),
        Some("serve") => serve::run(),
        Some("delay") => delay::run(&args[1..]),
        Some("tool") if args.len() >= 3 => {
            let host = Host::open(args[1].clone().into());
            let rest = &args[3..];
            match args[2].as_str() {
                "reboot" => systemctl::reboot(&host, "reboot"),
                "systemctl" => systemctl::run(&host, rest),
                "systemd-run" => systemd_run::run(&host, rest),
                "run-unit" => systemd_run::run_unit(&host, rest),
                "activate" => activate::activate_cmd(&host, rest),
                "switch-to-configuration" => activate::switch_to_configuration(&host, rest),
                other => {
                    eprintln!("lab-testhost-agent: unknown tool {other}");
                    2
                }
            }
        }
        _ => {
            eprintln!(
                "usage: lab-testhost-agent init HOST_DIR | serve | delay MS HOST PORT | tool HOST_DIR NAME ARGS..."
            );
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
