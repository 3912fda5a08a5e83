//! Attempts made in lab's own process: http with reqwest (rustls), tcp with
//! a socket, commands with `sh -c`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{seconds, Attempt, Prober, Via};
use crate::exec::{human_duration, tail, Cmd, ExecError, Executor, LocalExecutor};
use crate::metadata::{parse_status_range, HealthCheck};
use crate::redact::redact_text;

/// Redirects an http check follows before it fails.
const MAX_REDIRECTS: usize = 10;

/// The two HTTP clients checks need (verifying TLS or not), built on first
/// use and shared, so connections and TLS sessions are reused across checks.
#[derive(Debug, Clone, Default)]
pub struct HttpClients {
    verifying: Arc<OnceLock<Result<reqwest::Client, String>>>,
    insecure: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

impl HttpClients {
    fn get(&self, tls_verify: bool) -> Result<&reqwest::Client, &str> {
        let cell = if tls_verify { &self.verifying } else { &self.insecure };
        cell.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                // A health check tests the service itself, never a proxy
                // picked up from the environment.
                .no_proxy()
                .danger_accept_invalid_certs(!tls_verify)
                .user_agent(concat!("lab-health/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))
        })
        .as_ref()
        .map_err(String::as_str)
    }
}

/// `error: cause: cause`, without repeating a cause already in the text.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether `status` is in any of the `expected` codes and ranges.
pub(crate) fn status_expected(status: u16, expected: &[String]) -> Result<bool, String> {
    let mut any = false;
    for text in expected {
        let (lo, hi) = parse_status_range(text)
            .ok_or_else(|| format!("expectedStatus \"{text}\" is not a status code or range"))?;
        any |= (lo..=hi).contains(&status);
    }
    Ok(any)
}

/// The verdict on a response status, as an (outcome, message) pair.
pub(crate) fn judge_status(status: u16, reason: &str, expected: &[String]) -> (bool, String) {
    let shown = format!("{status} {reason}").trim_end().to_string();
    match status_expected(status, expected) {
        Ok(true) => (true, shown),
        Ok(false) => (false, format!("{shown}, expected {}", expected.join(", "))),
        Err(message) => (false, message),
    }
}

/// GETs `url` once: pass when the final status (after at most 10 redirects)
/// is in `expected`.
pub async fn probe_http(
    clients: &HttpClients,
    url: &str,
    expected: &[String],
    headers: &BTreeMap<String, String>,
    tls_verify: bool,
    timeout: Duration,
    via: Via,
) -> Attempt {
    let start = Instant::now();
    let client = match clients.get(tls_verify) {
        Ok(client) => client,
        Err(message) => return Attempt::failed(message, start.elapsed(), via),
    };
    let mut request = client.get(url).timeout(timeout);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let (passed, message) = judge_status(status.as_u16(), status.canonical_reason().unwrap_or(""), expected);
            Attempt { passed, latency: start.elapsed(), message, via }
        }
        Err(e) if e.is_timeout() => {
            Attempt::failed(format!("timed out after {}", human_duration(timeout)), start.elapsed(), via)
        }
        Err(e) => Attempt::failed(error_chain(&e.without_url()), start.elapsed(), via),
    }
}

/// Connects to `host:port` once: pass when the connection opens within `timeout`.
pub async fn probe_tcp(host: &str, port: u16, timeout: Duration, via: Via) -> Attempt {
    let start = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_stream)) => Attempt { passed: true, latency: start.elapsed(), message: "connected".into(), via },
        Ok(Err(e)) => Attempt::failed(format!("cannot connect to {host}:{port}: {e}"), start.elapsed(), via),
        Err(_) => Attempt::failed(
            format!("no connection to {host}:{port} within {}", human_duration(timeout)),
            start.elapsed(),
            via,
        ),
    }
}

/// Runs `command` with `sh -c` through `executor`: pass on exit 0.
pub async fn probe_command(executor: &dyn Executor, argv: Vec<String>, timeout: Duration, via: Via) -> Attempt {
    let start = Instant::now();
    let result = executor.run(&Cmd::new(argv).timeout(timeout)).await;
    let latency = start.elapsed();
    match result {
        Ok(output) if output.success() => {
            let said = redact_text(&tail(&output.stdout, 200));
            Attempt { passed: true, latency, message: if said.is_empty() { "exit 0".into() } else { said }, via }
        }
        Ok(output) => {
            let code = output.status.map_or("killed by a signal".to_string(), |c| format!("exit code {c}"));
            let said = redact_text(&tail(if output.stderr.is_empty() { &output.stdout } else { &output.stderr }, 200));
            Attempt::failed(if said.is_empty() { code } else { format!("{code}: {said}") }, latency, via)
        }
        Err(ExecError::Timeout { after, .. }) => {
            Attempt::failed(format!("timed out after {}", human_duration(after)), latency, via)
        }
        Err(e) => Attempt::failed(e.to_string(), latency, via),
    }
}

/// Makes attempts in this process: the controller's checks, and every check
/// of `lab health --local`.
#[derive(Debug, Clone)]
pub struct LocalProber {
    clients: HttpClients,
    local: LocalExecutor,
    via: Via,
}

impl LocalProber {
    /// A prober whose attempts are reported as made `via` (controller or local).
    pub fn new(clients: HttpClients, via: Via) -> Self {
        LocalProber { clients, local: LocalExecutor::new("localhost"), via }
    }
}

#[async_trait]
impl Prober for LocalProber {
    async fn probe(&self, check: &HealthCheck) -> Attempt {
        let timeout = seconds(check.common().timeout);
        match check {
            HealthCheck::Http { url, expected_status, headers, tls_verify, .. } => {
                probe_http(&self.clients, url, expected_status, headers, *tls_verify, timeout, self.via).await
            }
            HealthCheck::Tcp { port, host, .. } => match u16::try_from(*port) {
                Ok(port) => probe_tcp(host.as_deref().unwrap_or("localhost"), port, timeout, self.via).await,
                Err(_) => Attempt::failed(format!("port {port} is not a port"), Duration::ZERO, self.via),
            },
            HealthCheck::Command { command, .. } => {
                let argv = vec!["sh".to_string(), "-c".to_string(), command.clone()];
                probe_command(&self.local, argv, timeout, self.via).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_and_ranges() {
        let expected = vec!["200-299".to_string(), "301".to_string()];
        assert_eq!(status_expected(204, &expected), Ok(true));
        assert_eq!(status_expected(301, &expected), Ok(true));
        assert_eq!(status_expected(302, &expected), Ok(false));
        assert_eq!(status_expected(500, &expected), Ok(false));
        assert!(status_expected(200, &["2xx".to_string()]).is_err());
        assert_eq!(
            judge_status(500, "Internal Server Error", &expected).1,
            "500 Internal Server Error, expected 200-299, 301"
        );
    }
}
