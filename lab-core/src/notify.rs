//! Notification hooks: a command that receives one JSON event on stdin,
//! and/or an HTTP webhook that receives it as a POST.
//!
//! A hook never stops or slows a run: each delivery is bounded by a timeout,
//! runs on its own task, and its failure is reported, not raised.

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// Default time a hook gets.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where notifications go (the fleet's `lab.notify`, or
/// `services.lab-orchestrator.notify`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyConfig {
    /// A command (argv) run once per event with the event as JSON on stdin.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A URL the event is POSTed to as JSON.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Seconds each hook may take.
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// How one delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookOutcome {
    /// "command" or "webhook".
    pub hook: String,
    /// True when the hook took the event (exit 0, or a 2xx answer).
    pub delivered: bool,
    /// What went wrong, when it did.
    pub error: Option<String>,
}

impl NotifyConfig {
    /// True when no hook is configured.
    pub fn is_empty(&self) -> bool {
        self.command.as_ref().is_none_or(Vec::is_empty) && self.webhook.is_none()
    }

    fn timeout(&self) -> Duration {
        self.timeout.map_or(DEFAULT_HOOK_TIMEOUT, Duration::from_secs)
    }

    /// Delivers `event` to every hook, concurrently, each within its timeout.
    pub async fn deliver(&self, event: &serde_json::Value) -> Vec<HookOutcome> {
        let body = event.to_string();
        let timeout = self.timeout();
        let command = async {
            match &self.command {
                Some(argv) if !argv.is_empty() => Some(outcome("command", run_command(argv, &body, timeout).await)),
                _ => None,
            }
        };
        let webhook = async {
            match &self.webhook {
                Some(url) => Some(outcome("webhook", post(url, &body, timeout).await)),
                None => None,
            }
        };
        let (a, b) = tokio::join!(command, webhook);
        a.into_iter().chain(b).collect()
    }

    /// Delivers `event` on a task of its own and returns at once; the
    /// handle yields the outcomes for whoever wants to log them.
    pub fn spawn(&self, event: serde_json::Value) -> tokio::task::JoinHandle<Vec<HookOutcome>> {
        let config = self.clone();
        tokio::spawn(async move { config.deliver(&event).await })
    }
}

impl NotifyConfig {
    /// This configuration with every field `other` sets taken from `other`
    /// (command-line and service settings over the fleet's `lab.notify`).
    pub fn overridden_by(&self, other: &NotifyConfig) -> NotifyConfig {
        NotifyConfig {
            command: other.command.clone().filter(|c| !c.is_empty()).or_else(|| self.command.clone()),
            webhook: other.webhook.clone().or_else(|| self.webhook.clone()),
            timeout: other.timeout.or(self.timeout),
        }
    }

    /// Reads a notify configuration from a JSON file (the fleet's
    /// `lab.notify` shape: `{"command": [...], "webhook": "...", "timeout": 10}`).
    pub fn from_file(path: &std::path::Path) -> Result<NotifyConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the notify configuration {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!("the notify configuration {}: {e}; expected {{\"command\": [ARGV…], \"webhook\": URL, \"timeout\": SECONDS}}", path.display())
        })
    }
}

fn outcome(hook: &str, result: Result<(), String>) -> HookOutcome {
    HookOutcome { hook: hook.into(), delivered: result.is_ok(), error: result.err() }
}

async fn run_command(argv: &[String], body: &str, timeout: Duration) -> Result<(), String> {
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let mut stdin = child.stdin.take();
    let run = async {
        if let Some(stdin) = stdin.as_mut() {
            // A hook that does not read its input is not an error.
            let _ = stdin.write_all(body.as_bytes()).await;
        }
        drop(stdin);
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!("{} did not finish within {}s and was stopped", argv[0], timeout.as_secs())),
        Ok(Err(e)) => Err(format!("{}: {e}", argv[0])),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            Err(format!("{} exited with {}: {}", argv[0], out.status, String::from_utf8_lossy(&out.stderr).trim()))
        }
    }
}

async fn post(url: &str, body: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {}: {e}", crate::redact::redact_url(url)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {} answered {}", crate::redact::redact_url(url), response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn command_hook_gets_the_event_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        let config = NotifyConfig {
            command: Some(vec!["sh".into(), "-c".into(), format!("cat > {}", file.display())]),
            ..Default::default()
        };
        let event = json!({"event": "run-failed", "machine": "web-1"});
        let outcomes = config.deliver(&event).await;
        assert_eq!(outcomes, [HookOutcome { hook: "command".into(), delivered: true, error: None }]);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&file).unwrap()).unwrap(), event);
    }

    #[tokio::test]
    async fn failing_and_hanging_hooks_are_reported_and_bounded() {
        let failing = NotifyConfig { command: Some(vec!["false".into()]), ..Default::default() };
        let outcome = &failing.deliver(&json!({})).await[0];
        assert!(!outcome.delivered && outcome.error.as_deref().unwrap().contains("exited with"));

        let hanging =
            NotifyConfig { command: Some(vec!["sleep".into(), "30".into()]), timeout: Some(1), ..Default::default() };
        let started = std::time::Instant::now();
        let outcome = &hanging.deliver(&json!({})).await[0];
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(outcome.error.as_deref().unwrap().contains("did not finish within 1s"), "{outcome:?}");

        let missing = NotifyConfig { command: Some(vec!["/nonexistent/hook".into()]), ..Default::default() };
        assert!(missing.deliver(&json!({})).await[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot run /nonexistent/hook"));
    }
}
