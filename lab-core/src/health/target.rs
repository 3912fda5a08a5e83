//! Attempts on the machine itself, through its executor, so `localhost` in a
//! check means the machine.
//!
//! When lab is installed on the machine, it runs the check there
//! (`lab health --local`, check sent on standard input, JSON back). Otherwise
//! standard tools do: curl for http, bash's `/dev/tcp` or `nc -z` for tcp,
//! `sh -c` for commands, each wrapped in coreutils `timeout` when present.
//! Every attempt says which was used.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::probe::judge_status;
use super::{probe_command, seconds, Attempt, CheckResult, HttpClients, LocalProber, Prober, Via};
use crate::exec::{human_duration, tail, Cmd, Executor};
use crate::metadata::{HealthCheck, Machine, RunOn};
use crate::redact::redact_text;

/// Time allowed on top of a check's timeout for reaching the machine (the
/// ssh handshake when no connection is open yet).
const TRANSPORT_GRACE: Duration = Duration::from_secs(10);
/// Which tools the machine has; one line per tool found. A constant script:
/// nothing from the fleet is spliced into it.
const TOOLS_SCRIPT: &str =
    "for t in lab curl bash nc timeout; do command -v \"$t\" >/dev/null 2>&1 && echo \"$t\"; done; true";
/// coreutils `timeout`'s exit code when it stopped the command.
const TIMEOUT_EXIT: &str = "exit code 124";

/// The tools found on a machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetTools {
    /// `lab` (runs the checks itself).
    pub lab: bool,
    /// `curl`.
    pub curl: bool,
    /// `bash` (for `/dev/tcp`).
    pub bash: bool,
    /// `nc`.
    pub nc: bool,
    /// coreutils `timeout`.
    pub timeout: bool,
}

impl TargetTools {
    /// Reads the output of the detection script.
    pub fn parse(stdout: &str) -> Self {
        let has = |name: &str| stdout.lines().any(|l| l.trim() == name);
        TargetTools { lab: has("lab"), curl: has("curl"), bash: has("bash"), nc: has("nc"), timeout: has("timeout") }
    }
}

/// Runs one machine's checks where each says: on the machine through
/// `executor` (`runOn = "target"`), or from this process (`"controller"`).
#[derive(Debug)]
pub struct MachineProber {
    executor: Arc<dyn Executor>,
    controller: LocalProber,
    on_machine: LocalProber,
    machine: Machine,
    tools: Mutex<Option<TargetTools>>,
}

impl MachineProber {
    /// A prober for `machine`, reached through `executor`.
    pub fn new(machine: &Machine, executor: Arc<dyn Executor>, clients: HttpClients) -> Self {
        MachineProber {
            executor,
            controller: LocalProber::new(clients.clone(), Via::Controller),
            on_machine: LocalProber::new(clients, Via::Local),
            machine: machine.clone(),
            tools: Mutex::new(None),
        }
    }

    /// The tools on the machine, detected once (a failed detection is retried).
    pub async fn tools(&self) -> Result<TargetTools, Attempt> {
        if let Some(tools) = *self.tools.lock().unwrap_or_else(PoisonError::into_inner) {
            return Ok(tools);
        }
        let start = Instant::now();
        let cmd = Cmd::new(["sh", "-c", TOOLS_SCRIPT]).timeout(TRANSPORT_GRACE * 2);
        match self.executor.run_ok(&cmd).await {
            Ok(output) => {
                let tools = TargetTools::parse(&output.stdout_text());
                *self.tools.lock().unwrap_or_else(PoisonError::into_inner) = Some(tools);
                Ok(tools)
            }
            Err(e) => Err(Attempt::failed(e.to_string(), start.elapsed(), Via::Shell)),
        }
    }

    fn forget_lab(&self) {
        if let Some(tools) = self.tools.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            tools.lab = false;
        }
    }

    async fn on_target(&self, check: &HealthCheck) -> Attempt {
        let tools = match self.tools().await {
            Ok(tools) => tools,
            Err(attempt) => return attempt,
        };
        if tools.lab && !matches!(check, HealthCheck::Command { .. }) {
            match self.with_lab(check).await {
                Ok(attempt) => return attempt,
                // An older or broken lab on the machine: use the tools from now on.
                Err(_) => self.forget_lab(),
            }
        }
        let timeout = seconds(check.common().timeout);
        let wrap = |argv: Vec<String>| -> Vec<String> {
            if tools.timeout {
                let mut wrapped = vec!["timeout".to_string(), secs(timeout)];
                wrapped.extend(argv);
                wrapped
            } else {
                argv
            }
        };
        let attempt = match check {
            HealthCheck::Http { url, expected_status, headers, tls_verify, .. } => {
                if !tools.curl {
                    return Attempt::failed(
                        "neither lab nor curl is installed on the machine; install one, or use runOn = \"controller\"",
                        Duration::ZERO,
                        Via::Curl,
                    );
                }
                return self.with_curl(url, expected_status, headers, *tls_verify, timeout).await;
            }
            HealthCheck::Tcp { port, host, .. } => {
                let host = host.clone().unwrap_or_else(|| "localhost".into());
                let port = port.to_string();
                if tools.bash {
                    // bash started under sshd reads the machine's bashrc files
                    // (Debian's and nixpkgs' bash are built to); --norc keeps a
                    // slow or broken bashrc out of the check.
                    let argv =
                        vec!["bash", "--norc", "-c", "exec 3<>\"/dev/tcp/$1/$2\"", "lab-tcp-check", &host, &port];
                    let argv = wrap(argv.into_iter().map(String::from).collect());
                    probe_command(self.executor.as_ref(), argv, timeout + TRANSPORT_GRACE, Via::BashDevTcp).await
                } else if tools.nc {
                    let wait = timeout.as_secs().max(1).to_string();
                    let argv = ["nc", "-z", "-w", &wait, &host, &port].map(String::from).to_vec();
                    probe_command(self.executor.as_ref(), wrap(argv), timeout + TRANSPORT_GRACE, Via::Nc).await
                } else {
                    return Attempt::failed(
                        "neither lab, bash nor nc is installed on the machine; install one, or use runOn = \"controller\"",
                        Duration::ZERO,
                        Via::Nc,
                    );
                }
            }
            HealthCheck::Command { command, .. } => {
                let argv = wrap(vec!["sh".into(), "-c".into(), command.clone()]);
                probe_command(self.executor.as_ref(), argv, timeout + TRANSPORT_GRACE, Via::Shell).await
            }
        };
        if tools.timeout && !attempt.passed && attempt.message.starts_with(TIMEOUT_EXIT) {
            return Attempt { message: format!("timed out after {}", human_duration(timeout)), ..attempt };
        }
        if attempt.passed && matches!(check, HealthCheck::Tcp { .. }) {
            return Attempt { message: "connected".into(), ..attempt };
        }
        attempt
    }

    async fn with_curl(
        &self,
        url: &str,
        expected: &[String],
        headers: &std::collections::BTreeMap<String, String>,
        tls_verify: bool,
        timeout: Duration,
    ) -> Attempt {
        let mut argv: Vec<String> = [
            "curl",
            "--silent",
            "--show-error",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
            "--location",
            "--max-redirs",
            "10",
            "--noproxy",
            "*",
            "--max-time",
        ]
        .map(String::from)
        .to_vec();
        argv.push(secs(timeout));
        if !tls_verify {
            argv.push("--insecure".into());
        }
        for (name, value) in headers {
            argv.push("--header".into());
            argv.push(format!("{name}: {value}"));
        }
        argv.push("--url".into());
        argv.push(url.to_string());
        let start = Instant::now();
        let result = self.executor.run(&Cmd::new(argv).timeout(timeout + TRANSPORT_GRACE)).await;
        let latency = start.elapsed();
        match result {
            Ok(output) if output.success() => match output.stdout_text().trim().parse::<u16>() {
                Ok(status) => {
                    let reason =
                        reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
                    let (passed, message) = judge_status(status, reason, expected);
                    Attempt { passed, latency, message, via: Via::Curl }
                }
                Err(_) => Attempt::failed(
                    format!("curl printed {:?}, not a status", redact_text(&output.stdout_text())),
                    latency,
                    Via::Curl,
                ),
            },
            // curl's exit 28: its --max-time expired.
            Ok(output) if output.status == Some(28) => {
                Attempt::failed(format!("timed out after {}", human_duration(timeout)), latency, Via::Curl)
            }
            Ok(output) => Attempt::failed(redact_text(&tail(&output.stderr, 300)), latency, Via::Curl),
            Err(e) => Attempt::failed(e.to_string(), latency, Via::Curl),
        }
    }

    async fn with_lab(&self, check: &HealthCheck) -> Result<Attempt, String> {
        let mut document = self.machine.to_json_value();
        document["healthChecks"] = serde_json::json!([check]);
        let input = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
        let timeout = seconds(check.common().timeout);
        let cmd =
            Cmd::new(["lab", "health", "--local", "--metadata", "-"]).stdin(input).timeout(timeout + TRANSPORT_GRACE);
        let start = Instant::now();
        let output = match self.executor.run(&cmd).await {
            Ok(output) => output,
            // The connection failing is the attempt failing, not lab being unusable.
            Err(e) => return Ok(Attempt::failed(e.to_string(), start.elapsed(), Via::Lab)),
        };
        let reports: Vec<CheckResult> = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("lab on the machine answered unreadably ({e}): {}", tail(&output.stderr, 200)))?;
        let report = reports.into_iter().next().ok_or("lab on the machine ran no check")?;
        Ok(Attempt {
            passed: report.passed,
            latency: Duration::from_millis(report.latency_ms),
            message: report.message,
            via: Via::Lab,
        })
    }
}

/// Seconds as `timeout` and curl read them.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        d.as_secs().to_string()
    } else {
        format!("{s:.3}")
    }
}

#[async_trait]
impl Prober for MachineProber {
    async fn probe(&self, check: &HealthCheck) -> Attempt {
        match check.common().run_on {
            RunOn::Controller => self.controller.probe(check).await,
            RunOn::Target if self.executor.is_local() => self.on_machine.probe(check).await,
            RunOn::Target => self.on_target(check).await,
        }
    }

    async fn prepare(&self) {
        let on_target = self.machine.metadata.health_checks.iter().any(|c| c.common().run_on == RunOn::Target);
        if on_target && !self.executor.is_local() {
            let _ = self.tools().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_read_line_by_line() {
        let tools = TargetTools::parse("curl\nbash\ntimeout\n");
        assert_eq!(tools, TargetTools { lab: false, curl: true, bash: true, nc: false, timeout: true });
        assert_eq!(secs(Duration::from_secs(5)), "5");
        assert_eq!(secs(Duration::from_millis(1500)), "1.500");
    }
}
