//! http and tcp checks against real servers on 127.0.0.x.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lab_core::health::{probe_http, probe_tcp, wait_healthy, HttpClients, LocalProber, Via};
use lab_core::metadata::{CheckCommon, HealthCheck, RunOn};
use lab_testkit::http::{closed_port, Behaviour, HttpServer};
use tokio::time::Instant;

const IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 31);
const SECOND: Duration = Duration::from_secs(1);

fn ok() -> Vec<String> {
    vec!["200-299".into()]
}

async fn get(url: &str, expected: &[String]) -> lab_core::health::Attempt {
    probe_http(&HttpClients::default(), url, expected, &BTreeMap::new(), true, SECOND, Via::Controller).await
}

#[tokio::test]
async fn http_healthy_server_passes() {
    let server = HttpServer::start(IP, Behaviour::Status(200)).await;
    let attempt = get(&server.url("/health"), &ok()).await;
    assert!(attempt.passed, "{attempt:?}");
    assert_eq!(attempt.message, "200 OK");
    assert_eq!(attempt.via, Via::Controller);
}

#[tokio::test]
async fn http_500_fails_unless_expected() {
    let server = HttpServer::start(IP, Behaviour::Status(500)).await;
    let attempt = get(&server.url("/"), &ok()).await;
    assert!(!attempt.passed);
    assert_eq!(attempt.message, "500 Internal Server Error, expected 200-299");
    let attempt = get(&server.url("/"), &["200".into(), "500-503".into()]).await;
    assert!(attempt.passed, "{attempt:?}");
}

#[tokio::test]
async fn http_hanging_server_times_out() {
    let server = HttpServer::start(IP, Behaviour::Hang).await;
    let start = Instant::now();
    let attempt = get(&server.url("/"), &ok()).await;
    assert!(!attempt.passed);
    assert_eq!(attempt.message, "timed out after 1 s");
    // The server never answers: ending at all is the check (a hang bound, not a measurement).
    assert!(start.elapsed() < Duration::from_secs(30), "{:?}", start.elapsed());
}

#[tokio::test]
async fn http_closed_port_fails_with_the_reason() {
    let port = closed_port(IP);
    let attempt = get(&format!("http://{IP}:{port}/"), &ok()).await;
    assert!(!attempt.passed);
    assert!(
        attempt.message.contains("Connection refused") || attempt.message.contains("connection refused"),
        "{}",
        attempt.message
    );
}

#[tokio::test]
async fn http_follows_at_most_ten_redirects() {
    let server = HttpServer::start(IP, Behaviour::Redirects(3)).await;
    assert!(get(&server.url("/start"), &ok()).await.passed);
    let looping = HttpServer::start(IP, Behaviour::RedirectLoop).await;
    let attempt = get(&looping.url("/loop"), &ok()).await;
    assert!(!attempt.passed);
    assert!(attempt.message.contains("too many redirects"), "{}", attempt.message);
    assert_eq!(looping.requests.lock().unwrap().len(), 11);
}

#[tokio::test]
async fn http_sends_the_check_headers() {
    let server = HttpServer::start(IP, Behaviour::Status(204)).await;
    let headers = BTreeMap::from([("X-Lab-Test".to_string(), "yes please".to_string())]);
    let attempt =
        probe_http(&HttpClients::default(), &server.url("/h"), &ok(), &headers, true, SECOND, Via::Controller).await;
    assert!(attempt.passed);
    let head = server.requests.lock().unwrap()[0].to_lowercase();
    assert!(head.contains("x-lab-test: yes please"), "{head}");
}

#[tokio::test]
async fn tcp_open_and_closed_ports() {
    let server = HttpServer::start(IP, Behaviour::Status(200)).await;
    let attempt = probe_tcp(&IP.to_string(), server.addr.port(), SECOND, Via::Controller).await;
    assert!(attempt.passed, "{attempt:?}");
    let port = closed_port(IP);
    let attempt = probe_tcp(&IP.to_string(), port, SECOND, Via::Controller).await;
    assert!(!attempt.passed);
    assert!(attempt.message.starts_with(&format!("cannot connect to {IP}:{port}")), "{}", attempt.message);
}

#[tokio::test]
async fn wait_healthy_sees_a_real_service_recover() {
    let status = Arc::new(AtomicU16::new(503));
    let server = HttpServer::start(IP, Behaviour::Switch(status.clone())).await;
    let http = |url: String| HealthCheck::Http {
        url,
        expected_status: ok(),
        headers: BTreeMap::new(),
        tls_verify: true,
        common: CheckCommon { interval: 0, timeout: 1, run_on: RunOn::Controller, ..CheckCommon::default() },
    };
    let check = http(server.url("/health"));
    let prober = LocalProber::new(HttpClients::default(), Via::Controller);
    let flip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        status.store(200, Ordering::SeqCst);
    });
    let start = Instant::now();
    let healthy = wait_healthy(
        &prober,
        "web",
        std::slice::from_ref(&check),
        Duration::from_millis(300),
        start + Duration::from_secs(60),
    )
    .await
    .unwrap();
    flip.await.unwrap();
    // Healthy only after the flip and the initial delay; the deadline above only stops a hang.
    assert!(start.elapsed() >= Duration::from_millis(800), "{:?}", start.elapsed());
    assert_eq!(healthy.checks[0].last.as_ref().unwrap().message, "200 OK");
    // And a service that never recovers fails at the deadline with its last failure.
    let down = HttpServer::start(IP, Behaviour::Status(500)).await;
    let check = http(down.url("/"));
    let err = wait_healthy(&prober, "web", &[check], Duration::ZERO, Instant::now() + Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.failures[0].message, "500 Internal Server Error, expected 200-299");
}

/// A real TLS server (`openssl s_server -www`) with a self-signed
/// certificate: verified checks refuse it, `tlsVerify = false` accepts it.
#[tokio::test]
async fn https_certificates_are_verified_unless_tls_verify_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.32", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let port = closed_port(Ipv4Addr::new(127, 0, 0, 32));
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.32:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Bounded wait for the server to listen.
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.32", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("https://127.0.0.32:{port}/");
    let clients = HttpClients::default();
    let verified = probe_http(&clients, &url, &ok(), &BTreeMap::new(), true, SECOND * 3, Via::Controller).await;
    let unverified = probe_http(&clients, &url, &ok(), &BTreeMap::new(), false, SECOND * 3, Via::Controller).await;
    let _ = server.kill();
    let _ = server.wait();
    assert!(!verified.passed, "a self-signed certificate must not pass: {verified:?}");
    assert!(
        verified.message.to_lowercase().contains("certificate") || verified.message.contains("tls"),
        "{verified:?}"
    );
    assert!(unverified.passed, "{unverified:?}");
}
