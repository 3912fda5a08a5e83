//! Typed twin of the `lab.machine` NixOS option tree (nix/modules/lab-machine.nix).
//!
//! The JSON form is camelCase, exactly the option names, with the module's
//! defaults. A health check is an enum, so a tcp check cannot carry a url; on
//! the wire it is the module's flat record (every field present, unused ones
//! null or default), so Nix JSON → Rust → JSON is byte-stable.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default `orchestration.rebootDelay`, seconds.
pub const DEFAULT_REBOOT_DELAY: i64 = 600;
/// Default `orchestration.healthyDeadline`, seconds.
pub const DEFAULT_HEALTHY_DEADLINE: i64 = 300;
/// Default `orchestration.minHealthyTime`, seconds.
pub const DEFAULT_MIN_HEALTHY_TIME: i64 = 10;
/// Default `orchestration.rebootTimeout`, seconds.
pub const DEFAULT_REBOOT_TIMEOUT: i64 = 600;
/// Default `orchestration.activationTimeout`, seconds (deploy-rs's too).
pub const DEFAULT_ACTIVATION_TIMEOUT: i64 = 240;
/// Default `orchestration.confirmTimeout`, seconds.
pub const DEFAULT_CONFIRM_TIMEOUT: i64 = 30;
/// Default `targetUser`.
pub const DEFAULT_TARGET_USER: &str = "root";
/// Default `targetPort`.
pub const DEFAULT_TARGET_PORT: i64 = 22;
/// Default `expectedStatus` of an http check.
pub const DEFAULT_EXPECTED_STATUS: &str = "200-299";
/// Default per-attempt `timeout` of a check, seconds.
pub const DEFAULT_CHECK_TIMEOUT: i64 = 5;
/// Default `interval` between attempts of a check, seconds.
pub const DEFAULT_CHECK_INTERVAL: i64 = 5;
/// Default `successThreshold` of a check.
pub const DEFAULT_SUCCESS_THRESHOLD: i64 = 1;
/// Default `failureThreshold` of a check.
pub const DEFAULT_FAILURE_THRESHOLD: i64 = 3;

/// One machine's `lab.machine` options.
///
/// Fields are declared in the alphabetical order of their JSON names, the
/// order `builtins.toJSON` writes them, so serialized output matches Nix's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "lab.machine",
    description = "Orchestration metadata of one NixOS machine (the lab.machine option tree)."
)]
pub struct MachineMetadata {
    /// Machines (by name) this machine needs; they are deployed and rebooted first.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Groups this machine belongs to (e.g. "dns"); `@group` selects them.
    #[serde(default)]
    pub groups: Vec<String>,
    /// What proves this machine healthy after a deploy or a reboot.
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    /// How this machine is deployed and rebooted.
    #[serde(default)]
    pub orchestration: Orchestration,
    /// Position in the reboot sequence among machines that are ready at the same time (lower first).
    pub reboot_order: i64,
    /// The machine's role in the lab, e.g. "web-server".
    pub role: String,
    /// Host name or address lab connects to; the module defaults it to networking.hostName.
    #[serde(default)]
    pub target_host: Option<String>,
    /// SSH port lab connects to.
    #[serde(default = "default_target_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: i64,
    /// User lab connects as.
    #[serde(default = "default_target_user")]
    pub target_user: String,
}

fn default_target_port() -> i64 {
    DEFAULT_TARGET_PORT
}
fn default_target_user() -> String {
    DEFAULT_TARGET_USER.to_string()
}

/// `lab.machine.orchestration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Orchestration {
    /// Seconds lab follows an activation (switch-to-configuration) on the
    /// machine, also across a dropped connection, before it gives up on it;
    /// the machine's own rollback watchdog fires this long plus
    /// confirmTimeout after the activation began.
    #[serde(default = "default_activation_timeout")]
    #[schemars(range(min = 1))]
    pub activation_timeout: i64,
    /// Seconds after an activation within which lab must reach the machine
    /// again over a fresh connection; otherwise the machine rolls itself back.
    #[serde(default = "default_confirm_timeout")]
    #[schemars(range(min = 1))]
    pub confirm_timeout: i64,
    /// How much of the fleet may be down with this machine.
    #[serde(default)]
    pub criticality_level: Criticality,
    /// How a new configuration is activated.
    #[serde(default)]
    pub deploy_strategy: DeployStrategy,
    /// Seconds the machine gets after activation or boot to pass all checks.
    #[serde(default = "default_healthy_deadline")]
    #[schemars(range(min = 0))]
    pub healthy_deadline: i64,
    /// Seconds all checks must keep passing before the machine counts as healthy.
    #[serde(default = "default_min_healthy_time")]
    #[schemars(range(min = 0))]
    pub min_healthy_time: i64,
    /// Seconds to wait before this machine reboots.
    #[serde(default = "default_reboot_delay")]
    #[schemars(range(min = 0))]
    pub reboot_delay: i64,
    /// Seconds the machine gets to come back from a reboot.
    #[serde(default = "default_reboot_timeout")]
    #[schemars(range(min = 0))]
    pub reboot_timeout: i64,
}

fn default_activation_timeout() -> i64 {
    DEFAULT_ACTIVATION_TIMEOUT
}
fn default_confirm_timeout() -> i64 {
    DEFAULT_CONFIRM_TIMEOUT
}
fn default_healthy_deadline() -> i64 {
    DEFAULT_HEALTHY_DEADLINE
}
fn default_min_healthy_time() -> i64 {
    DEFAULT_MIN_HEALTHY_TIME
}
fn default_reboot_delay() -> i64 {
    DEFAULT_REBOOT_DELAY
}
fn default_reboot_timeout() -> i64 {
    DEFAULT_REBOOT_TIMEOUT
}

impl Default for Orchestration {
    fn default() -> Self {
        Orchestration {
            activation_timeout: DEFAULT_ACTIVATION_TIMEOUT,
            confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
            criticality_level: Criticality::default(),
            deploy_strategy: DeployStrategy::default(),
            healthy_deadline: DEFAULT_HEALTHY_DEADLINE,
            min_healthy_time: DEFAULT_MIN_HEALTHY_TIME,
            reboot_delay: DEFAULT_REBOOT_DELAY,
            reboot_timeout: DEFAULT_REBOOT_TIMEOUT,
        }
    }
}

/// `orchestration.deployStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeployStrategy {
    /// One machine at a time (within the parallelism limit), each health-gated.
    #[default]
    Rolling,
    /// Activate live, make permanent only when every machine of the wave is healthy.
    BlueGreen,
    /// Activate all that are ready at once, whatever maxParallel; for machines whose downtime does not matter.
    Recreate,
}

/// `orchestration.criticalityLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Criticality {
    /// Follows the global parallelism limit.
    Low,
    /// Follows the global parallelism limit.
    #[default]
    Medium,
    /// Never down together with another machine of any of its groups.
    High,
    /// Never down together with any other machine.
    Critical,
}

/// Where a health check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunOn {
    /// On the machine itself, so `localhost` means the machine.
    #[default]
    Target,
    /// From the host that orchestrates.
    Controller,
}

/// Settings every kind of health check shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCommon {
    /// Seconds per attempt.
    pub timeout: i64,
    /// Seconds between attempts.
    pub interval: i64,
    /// Seconds to wait before the first attempt.
    pub initial_delay: i64,
    /// Consecutive passes to count as passing.
    pub success_threshold: i64,
    /// Consecutive failures, after a first pass, to count as failing.
    pub failure_threshold: i64,
    /// A check that is not required is reported but never blocks.
    pub required: bool,
    /// Where the check runs.
    pub run_on: RunOn,
    /// Free text shown in reports.
    pub description: Option<String>,
}

impl Default for CheckCommon {
    fn default() -> Self {
        CheckCommon {
            timeout: DEFAULT_CHECK_TIMEOUT,
            interval: DEFAULT_CHECK_INTERVAL,
            initial_delay: 0,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            required: true,
            run_on: RunOn::Target,
            description: None,
        }
    }
}

/// One entry of `lab.machine.healthChecks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawHealthCheck", into = "RawHealthCheck")]
pub enum HealthCheck {
    /// GET `url`; pass when the status is in `expected_status`.
    Http {
        /// The URL to GET.
        url: String,
        /// Status codes ("200") or ranges ("200-299") that count as a pass.
        expected_status: Vec<String>,
        /// Extra request headers.
        headers: BTreeMap<String, String>,
        /// Verify TLS certificates.
        tls_verify: bool,
        /// Shared settings.
        common: CheckCommon,
    },
    /// Connect to `host:port`.
    Tcp {
        /// The port to connect to.
        port: i64,
        /// The host to connect to; `None` is the machine itself.
        host: Option<String>,
        /// Shared settings.
        common: CheckCommon,
    },
    /// Run `command`; pass on exit 0.
    Command {
        /// The command, run by the machine's shell.
        command: String,
        /// Shared settings.
        common: CheckCommon,
    },
}

impl HealthCheck {
    /// The settings shared by every kind of check.
    pub fn common(&self) -> &CheckCommon {
        match self {
            HealthCheck::Http { common, .. }
            | HealthCheck::Tcp { common, .. }
            | HealthCheck::Command { common, .. } => common,
        }
    }

    /// The check's kind as written in Nix: "http", "tcp" or "command".
    pub fn kind(&self) -> CheckType {
        match self {
            HealthCheck::Http { .. } => CheckType::Http,
            HealthCheck::Tcp { .. } => CheckType::Tcp,
            HealthCheck::Command { .. } => CheckType::Command,
        }
    }

    /// A short human label: the url, `tcp HOST:PORT` or the command, with
    /// credentials redacted (labels reach reports, logs and the journal).
    pub fn label(&self) -> String {
        match self {
            HealthCheck::Http { url, .. } => format!("http {}", crate::redact::redact_url(url)),
            HealthCheck::Tcp { port, host, .. } => {
                format!("tcp {}:{port}", host.as_deref().unwrap_or("localhost"))
            }
            HealthCheck::Command { command, .. } => format!("command {}", crate::redact::redact_text(command)),
        }
    }
}

/// The `type` of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// An HTTP GET.
    Http,
    /// A TCP connect.
    Tcp,
    /// A command's exit status.
    Command,
}

impl std::fmt::Display for CheckType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckType::Http => "http",
            CheckType::Tcp => "tcp",
            CheckType::Command => "command",
        })
    }
}

/// The wire form of a health check: the module's flat submodule, every
/// option present. Converted to [`HealthCheck`] with applicability checks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "healthCheck",
    description = "One health check. `type` says which: http needs url, tcp needs port, command needs command."
)]
pub struct RawHealthCheck {
    /// command: the command to run (by the machine's shell); pass on exit 0.
    #[serde(default)]
    pub command: Option<String>,
    /// Free text shown in reports.
    #[serde(default)]
    pub description: Option<String>,
    /// http: status codes ("200") or ranges ("200-299") that count as a pass.
    #[serde(default = "default_expected_status")]
    pub expected_status: Vec<String>,
    /// Consecutive failures, after a first pass, to count as failing.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1))]
    pub failure_threshold: i64,
    /// http: extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// tcp: host to connect to; null is the machine itself.
    #[serde(default)]
    pub host: Option<String>,
    /// Seconds to wait before the first attempt.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub initial_delay: i64,
    /// Seconds between attempts.
    #[serde(default = "default_check_interval")]
    #[schemars(range(min = 0))]
    pub interval: i64,
    /// tcp: port to connect to.
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i64>,
    /// A check that is not required is reported but never blocks.
    #[serde(default = "default_true")]
    pub required: bool,
    /// "target": runs on the machine (localhost is the machine); "controller": runs from the orchestrating host.
    #[serde(default)]
    pub run_on: RunOn,
    /// Consecutive passes to count as passing.
    #[serde(default = "default_success_threshold")]
    #[schemars(range(min = 1))]
    pub success_threshold: i64,
    /// Seconds per attempt.
    #[serde(default = "default_check_timeout")]
    #[schemars(range(min = 1))]
    pub timeout: i64,
    /// http: verify TLS certificates.
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// Kind of check.
    #[serde(rename = "type")]
    pub kind: CheckType,
    /// http: the URL to GET.
    #[serde(default)]
    pub url: Option<String>,
}

fn default_expected_status() -> Vec<String> {
    vec![DEFAULT_EXPECTED_STATUS.to_string()]
}
fn default_failure_threshold() -> i64 {
    DEFAULT_FAILURE_THRESHOLD
}
fn default_success_threshold() -> i64 {
    DEFAULT_SUCCESS_THRESHOLD
}
fn default_check_interval() -> i64 {
    DEFAULT_CHECK_INTERVAL
}
fn default_check_timeout() -> i64 {
    DEFAULT_CHECK_TIMEOUT
}
fn default_true() -> bool {
    true
}

impl TryFrom<RawHealthCheck> for HealthCheck {
    type Error = String;

    fn try_from(raw: RawHealthCheck) -> Result<Self, String> {
        let kind = raw.kind;
        // Options that belong to another kind of check must keep their defaults,
        // so a tcp check with a url is refused rather than silently ignored.
        let mut stray = Vec::new();
        if kind != CheckType::Http {
            if raw.url.is_some() {
                stray.push("url");
            }
            if raw.expected_status != default_expected_status() {
                stray.push("expectedStatus");
            }
            if !raw.headers.is_empty() {
                stray.push("headers");
            }
            if !raw.tls_verify {
                stray.push("tlsVerify");
            }
        }
        if kind != CheckType::Tcp {
            if raw.port.is_some() {
                stray.push("port");
            }
            if raw.host.is_some() {
                stray.push("host");
            }
        }
        if kind != CheckType::Command && raw.command.is_some() {
            stray.push("command");
        }
        if !stray.is_empty() {
            let article = if kind == CheckType::Http { "an" } else { "a" };
            return Err(format!("{article} {kind} check cannot set {}; remove it or change `type`", stray.join(", ")));
        }
        let common = CheckCommon {
            timeout: raw.timeout,
            interval: raw.interval,
            initial_delay: raw.initial_delay,
            success_threshold: raw.success_threshold,
            failure_threshold: raw.failure_threshold,
            required: raw.required,
            run_on: raw.run_on,
            description: raw.description,
        };
        match kind {
            CheckType::Http => Ok(HealthCheck::Http {
                url: raw.url.ok_or("an http check needs `url`, e.g. url = \"http://localhost/health\"")?,
                expected_status: raw.expected_status,
                headers: raw.headers,
                tls_verify: raw.tls_verify,
                common,
            }),
            CheckType::Tcp => Ok(HealthCheck::Tcp {
                port: raw.port.ok_or("a tcp check needs `port`, e.g. port = 5432")?,
                host: raw.host,
                common,
            }),
            CheckType::Command => Ok(HealthCheck::Command {
                command: raw
                    .command
                    .ok_or("a command check needs `command`, e.g. command = \"systemctl is-active nginx\"")?,
                common,
            }),
        }
    }
}

impl From<HealthCheck> for RawHealthCheck {
    fn from(check: HealthCheck) -> Self {
        let kind = check.kind();
        let mut raw = RawHealthCheck {
            command: None,
            description: None,
            expected_status: default_expected_status(),
            failure_threshold: 0,
            headers: BTreeMap::new(),
            host: None,
            initial_delay: 0,
            interval: 0,
            port: None,
            required: true,
            run_on: RunOn::Target,
            success_threshold: 0,
            timeout: 0,
            tls_verify: true,
            kind,
            url: None,
        };
        let common = match check {
            HealthCheck::Http { url, expected_status, headers, tls_verify, common } => {
                raw.url = Some(url);
                raw.expected_status = expected_status;
                raw.headers = headers;
                raw.tls_verify = tls_verify;
                common
            }
            HealthCheck::Tcp { port, host, common } => {
                raw.port = Some(port);
                raw.host = host;
                common
            }
            HealthCheck::Command { command, common } => {
                raw.command = Some(command);
                common
            }
        };
        raw.timeout = common.timeout;
        raw.interval = common.interval;
        raw.initial_delay = common.initial_delay;
        raw.success_threshold = common.success_threshold;
        raw.failure_threshold = common.failure_threshold;
        raw.required = common.required;
        raw.run_on = common.run_on;
        raw.description = common.description;
        raw
    }
}

impl JsonSchema for HealthCheck {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "healthCheck".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // The flat record, plus one rule per kind: which field it requires.
        let mut schema = RawHealthCheck::json_schema(generator);
        let rule = |kind: &str, field: &str| {
            serde_json::json!({
                "if": { "properties": { "type": { "const": kind } }, "required": ["type"] },
                "then": { "required": [field], "properties": { field: { "not": { "type": "null" } } } }
            })
        };
        schema.insert(
            "allOf".into(),
            serde_json::json!([rule("http", "url"), rule("tcp", "port"), rule("command", "command")]),
        );
        schema
    }
}

mod machine;
mod validate;

pub use machine::{
    parse_fleet_json, parse_machine, parse_machine_options, read_fleet_json, strict_json, Machine, MetadataError,
};
pub(crate) use validate::not_a_host;
pub use validate::{parse_status_range, validate, Problem, Severity};
