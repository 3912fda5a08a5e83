//! Field validation of one machine's metadata: every problem at once, each
//! naming the machine, the field and what to do.

use std::fmt;

use serde::Serialize;

use super::{HealthCheck, MachineMetadata, RunOn};

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not make the fleet unclean.
    Warning,
    /// The fleet cannot be orchestrated until it is fixed.
    Error,
}

/// One problem found in a machine's metadata or in the fleet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Problem {
    /// The machine it concerns.
    pub machine: String,
    /// The field, as a path in `lab.machine` (e.g. `healthChecks[1].url`).
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Problem {
    /// An error on `machine`'s `field`.
    pub fn error(machine: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            machine: machine.to_string(),
            field: field.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A warning on `machine`'s `field`.
    pub fn warning(machine: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { severity: Severity::Warning, ..Problem::error(machine, field, message) }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        // Names are shown escaped: a newline or escape sequence in one must
        // not forge another line or steer the terminal.
        let machine = crate::printable::printable(&self.machine);
        write!(f, "{level}: machine `{machine}`: {}: {}", self.field, self.message)
    }
}

/// Checks one machine's metadata and returns every problem found (empty when
/// it is clean), in field order.
pub fn validate(machine: &str, metadata: &MachineMetadata) -> Vec<Problem> {
    let mut out = Vec::new();
    let err = |out: &mut Vec<Problem>, field: &str, message: String| out.push(Problem::error(machine, field, message));

    if metadata.role.trim().is_empty() {
        err(
            &mut out,
            "role",
            "role is empty; set lab.machine.role to what the machine does, e.g. \"web-server\"".into(),
        );
    }
    for (i, group) in metadata.groups.iter().enumerate() {
        if group.trim().is_empty() {
            err(&mut out, &format!("groups[{i}]"), "group name is empty; remove it or name the group".into());
        }
    }
    let mut seen = Vec::new();
    for (i, dep) in metadata.dependencies.iter().enumerate() {
        let field = format!("dependencies[{i}]");
        if dep == machine {
            err(
                &mut out,
                &field,
                format!("the machine depends on itself; remove \"{dep}\" from lab.machine.dependencies"),
            );
        } else if seen.contains(&dep) {
            err(&mut out, &field, format!("\"{dep}\" is listed twice; remove the second one"));
        }
        seen.push(dep);
    }
    if let Some(host) = &metadata.target_host {
        if host.trim().is_empty() {
            err(
                &mut out,
                "targetHost",
                "targetHost is empty; set it to the machine's address or leave it unset to use networking.hostName"
                    .into(),
            );
        } else if !crate::exec::is_valid_host(host) {
            err(&mut out, "targetHost", not_a_host(host));
        }
    }
    if metadata.target_user.trim().is_empty() {
        err(&mut out, "targetUser", "targetUser is empty; set it to the ssh user, e.g. \"root\"".into());
    } else if !crate::exec::is_valid_user(&metadata.target_user) {
        err(
            &mut out,
            "targetUser",
            format!(
                "{:?} is not a user name lab can pass to ssh (letters, digits, '.', '-', '_'; not starting with '-'); set it to the ssh user, e.g. \"root\"",
                metadata.target_user
            ),
        );
    }
    check_port(&mut out, machine, "targetPort", metadata.target_port);

    let o = &metadata.orchestration;
    for (name, value) in [
        ("rebootDelay", o.reboot_delay),
        ("healthyDeadline", o.healthy_deadline),
        ("minHealthyTime", o.min_healthy_time),
        ("rebootTimeout", o.reboot_timeout),
        ("confirmTimeout", o.confirm_timeout),
        ("activationTimeout", o.activation_timeout),
    ] {
        // A zero confirmTimeout would roll back the moment activation ends,
        // a zero activationTimeout give up before it began.
        let least = if matches!(name, "confirmTimeout" | "activationTimeout") { 1 } else { 0 };
        if value == 0 && least == 1 {
            err(&mut out, &format!("orchestration.{name}"), "0 leaves no time at all; use 1 or more seconds".into());
        } else if value < 0 {
            err(
                &mut out,
                &format!("orchestration.{name}"),
                format!("{value} is negative; use {least} or more seconds"),
            );
        } else if value > MAX_SECONDS {
            err(&mut out, &format!("orchestration.{name}"), too_long(value));
        }
    }

    // A machine reached at the controller itself (lab managing the host it
    // runs on) is what a local check on the controller tests: nothing to flag.
    let target_is_controller = metadata.target_host.as_deref().is_some_and(is_controller);
    for (i, check) in metadata.health_checks.iter().enumerate() {
        validate_check(&mut out, machine, &format!("healthChecks[{i}]"), check, target_is_controller);
        if let Some(first) = metadata.health_checks[..i].iter().position(|c| c == check) {
            err(
                &mut out,
                &format!("healthChecks[{i}]"),
                format!("duplicates healthChecks[{first}] ({}); remove one", check.label()),
            );
        }
    }
    out
}

/// Why `host` cannot be a target; shared with the fleet check of names and
/// hostnames that stand in for an unset targetHost.
pub(crate) fn not_a_host(host: &str) -> String {
    format!(
        "{host:?} is not a host name or address lab can pass to ssh (at most 253 letters, digits, '.', '-', '_', ':', '%'; not starting with '-'); set lab.machine.targetHost to the machine's address"
    )
}

/// The longest duration a setting may ask for: a year. Longer is a typo (a
/// value in milliseconds, an extra zero), and would overflow time arithmetic.
const MAX_SECONDS: i64 = 366 * 24 * 3600;

fn too_long(value: i64) -> String {
    format!("{value} seconds is more than a year; use at most {MAX_SECONDS} (the value is in seconds)")
}

fn check_port(out: &mut Vec<Problem>, machine: &str, field: &str, port: i64) {
    if !(1..=65535).contains(&port) {
        out.push(Problem::error(
            machine,
            field,
            format!("port {port} is out of range; use a port between 1 and 65535"),
        ));
    }
}

/// `target_is_controller`: the machine's targetHost is the controller, so a
/// check on the controller that tests the controller tests the machine.
fn validate_check(out: &mut Vec<Problem>, machine: &str, at: &str, check: &HealthCheck, target_is_controller: bool) {
    let mut err = |field: &str, message: String| out.push(Problem::error(machine, format!("{at}.{field}"), message));
    let common = check.common();
    // Whether a check that would test the controller is a mistake: it is
    // unless the machine is the controller.
    let on_other_controller = common.run_on == RunOn::Controller && !target_is_controller;
    match check {
        HealthCheck::Http { url, expected_status, headers, .. } => {
            // Messages show the url without its credentials.
            let shown = crate::redact::redact_url(url);
            match url::Url::parse(url) {
                Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => err(
                    "url",
                    format!("\"{shown}\" uses the scheme `{}`; use an http:// or https:// URL", parsed.scheme()),
                ),
                Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
                    err("url", format!("\"{shown}\" has no host; write it as http://HOST[:PORT]/PATH"))
                }
                Ok(parsed) => {
                    if on_other_controller && is_local(parsed.host_str().unwrap_or_default()) {
                        err("url", local_on_controller(&shown));
                    }
                }
                Err(e) => {
                    err("url", format!("\"{shown}\" is not a valid URL ({e}); write it as http://HOST[:PORT]/PATH"))
                }
            }
            if expected_status.is_empty() {
                err("expectedStatus", "no status would pass; list codes or ranges such as \"200-299\"".into());
            }
            for (i, status) in expected_status.iter().enumerate() {
                if parse_status_range(status).is_none() {
                    err(
                        &format!("expectedStatus[{i}]"),
                        format!("\"{status}\" is not a status code or range; use e.g. \"200\" or \"200-299\" (codes 100-599)"),
                    );
                }
            }
            for name in headers.keys() {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                    err("headers", format!("\"{name}\" is not a valid header name; use letters, digits and dashes"));
                }
            }
        }
        HealthCheck::Tcp { port, host, .. } => {
            if !(1..=65535).contains(port) {
                err("port", format!("port {port} is out of range; use a port between 1 and 65535"));
            }
            if let Some(h) = host {
                if h.trim().is_empty() {
                    err("host", "host is empty; leave it unset to check the machine itself".into());
                } else if on_other_controller && is_local(h) {
                    err("host", local_on_controller(h));
                }
            } else if on_other_controller {
                err("host", "a tcp check that runs on the controller needs `host`: without it, it would test the controller; set host or use runOn = \"target\"".into());
            }
        }
        HealthCheck::Command { command, .. } => {
            if command.trim().is_empty() {
                err("command", "command is empty; give the command to run, e.g. \"systemctl is-active nginx\"".into());
            }
        }
    }
    if common.timeout < 1 {
        err("timeout", format!("{} is too small; give each attempt at least 1 second", common.timeout));
    } else if common.timeout > MAX_SECONDS {
        err("timeout", too_long(common.timeout));
    }
    for (name, value) in [("interval", common.interval), ("initialDelay", common.initial_delay)] {
        if value < 0 {
            err(name, format!("{value} is negative; use 0 or more seconds"));
        } else if value > MAX_SECONDS {
            err(name, too_long(value));
        }
    }
    for (name, value) in
        [("successThreshold", common.success_threshold), ("failureThreshold", common.failure_threshold)]
    {
        if value < 1 {
            err(name, format!("{value} is too small; use 1 or more"));
        }
    }
}

fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

/// Whether `host` is the controller lab runs on: a loopback name or address,
/// or this host's own name (as the kernel has it, case and a final dot aside).
fn is_controller(host: &str) -> bool {
    static HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let own = HOSTNAME.get_or_init(crate::exec::hostname);
    is_local(host) || host.trim_end_matches('.').eq_ignore_ascii_case(own.trim_end_matches('.'))
}

fn local_on_controller(what: &str) -> String {
    format!("\"{what}\" is local, and the check runs on the controller, so it would test the controller; use runOn = \"target\" or the machine's address")
}

/// Parses an `expectedStatus` entry: "200" or "200-299", codes within 100..=599.
pub fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let code = |s: &str| s.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    match text.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (code(lo)?, code(hi)?);
            (lo <= hi).then_some((lo, hi))
        }
        None => code(text).map(|c| (c, c)),
    }
}
