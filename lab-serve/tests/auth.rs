//! Who may read what `lab serve` serves: loopback without a token by
//! default; off loopback no start without a token file; with a token, every
//! route but the page needs it (missing or wrong: 401); and no answer,
//! metric or event carries a credential, neither the token nor one written
//! in the fleet (a health check's URL with a password). A real server on
//! a real socket, asked over HTTP; the machine is this host, reached by
//! the local executor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab_core::exec::{Executor, LocalExecutor};
use lab_core::graph::{Fleet as Graph, Limits};
use lab_core::metadata::parse_fleet_json;
use lab_core::store::dir::StateDir;
use lab_serve::{Fleet, ServeError, ServeOptions, Server};

const TOKEN: &str = "tok-3f9a1c7e55d2b8";
/// The password in the health check's URL.
const PASSWORD: &str = "hunter2pw";
const ROUTES: [&str; 6] = ["/api/status", "/api/graph", "/api/runs", "/api/runs/r1", "/api/events", "/metrics"];
const BOUND: Duration = Duration::from_secs(60);

fn fleet() -> Fleet {
    // A machine of the JSON contract's example, with one check whose URL holds a password.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../lab-core/tests/fixtures/fleets/example.json");
    let example: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    let mut web = example["router"].clone();
    let mut check = example["desktop"]["healthChecks"][0].clone();
    check["type"] = "http".into();
    check["command"] = serde_json::Value::Null;
    check["url"] = format!("http://admin:{PASSWORD}@127.0.0.1:9/health").into();
    check["runOn"] = "controller".into();
    check["required"] = true.into();
    check["timeout"] = 2.into();
    web["healthChecks"] = serde_json::json!([check]);
    web["role"] = "web".into();
    web["groups"] = serde_json::json!(["edge"]);
    let json = serde_json::json!({ "web": web });
    let machines = parse_fleet_json(&json.to_string(), None).unwrap();
    let reached = lab_core::reach::reach_with(machines.values(), |m| {
        Ok::<_, ()>(Arc::new(LocalExecutor::new(m.name.clone())) as Arc<dyn Executor>)
    })
    .unwrap();
    let graph = Graph::from_map(&machines).unwrap();
    Fleet {
        machines: reached,
        expected: Default::default(),
        evaluated_at_ms: 0,
        graph,
        limits: Limits::default(),
        builder: None,
    }
}

fn options(listen: &str, token_file: Option<std::path::PathBuf>, state: &std::path::Path) -> ServeOptions {
    ServeOptions {
        listen: listen.parse().unwrap(),
        token_file,
        interval: Duration::from_secs(1),
        parallel: 4,
        state: StateDir::new(state),
    }
}

/// A server answering on its own runtime thread; its address.
fn start(options: ServeOptions) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let server = Server::bind(options).await.unwrap();
            addr_tx.send(server.local_addr()).unwrap();
            server
                .run(fleet(), async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    (addr_rx.recv_timeout(BOUND).unwrap(), stop_tx)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// Status, headers as text, and the body (for the event stream: what
/// arrives until a status message, bounded).
async fn get(addr: SocketAddr, route: &str, bearer: Option<&str>) -> (u16, String, String) {
    let port = addr.port();
    let mut request = client().get(format!("http://127.0.0.1:{port}{route}"));
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let mut body = String::new();
    if route == "/api/events" && status == 200 {
        let deadline = tokio::time::Instant::now() + BOUND;
        while !body.contains("event: status") {
            match tokio::time::timeout_at(deadline, response.chunk()).await {
                Ok(Ok(Some(chunk))) => body.push_str(&String::from_utf8_lossy(&chunk)),
                _ => panic!("no status message on the event stream within {BOUND:?}: {body}"),
            }
        }
    } else {
        body = response.text().await.unwrap();
    }
    (status, headers, body)
}

/// Waits for the first probe to end (bounded).
async fn probed(addr: SocketAddr, bearer: Option<&str>) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (code, _, body) = get(addr, "/api/status", bearer).await;
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        if !status["probedAtMs"].is_null() {
            return status;
        }
        assert!(start.elapsed() < BOUND, "no probe within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_journal(state: &std::path::Path) {
    use lab_core::store::journal::{Entry, Journal};
    let state = StateDir::new(state);
    let mut journal = Journal::create(&state.journal_path("r1"), "r1").unwrap();
    journal
        .append(Entry::RunStarted { plan_hash: "h".into(), command: vec!["deploy".into()], detail: Default::default() })
        .unwrap();
}

#[tokio::test]
async fn loopback_is_the_default_and_needs_no_token() {
    let state = tempfile::tempdir().unwrap();
    write_journal(state.path());
    let (addr, stop) = start(options("127.0.0.1:0", None, state.path()));
    assert!(addr.ip().is_loopback());
    let status = probed(addr, None).await;
    assert_eq!(status["machines"][0]["machine"], "web", "{status}");
    assert_eq!(status["intervalSeconds"], 1);
    for route in ROUTES {
        let (code, _, body) = get(addr, route, None).await;
        assert_eq!(code, 200, "{route}: {body}");
    }
    // This fleet has no systems to build (no builder): the diff says so;
    // a machine the server does not show is not found.
    let (code, _, body) = get(addr, "/api/diff/web", None).await;
    assert_eq!((code, body.contains("no systems to build")), (501, true), "{body}");
    let (code, _, _) = get(addr, "/api/diff/nosuch", None).await;
    assert_eq!(code, 404);
    stop.send(()).unwrap();
}

#[tokio::test]
async fn off_loopback_without_a_token_file_it_refuses_to_start() {
    let state = tempfile::tempdir().unwrap();
    let err = Server::bind(options("0.0.0.0:0", None, state.path())).await.err().expect("refused");
    assert!(matches!(err, ServeError::TokenRequired(_)), "{err}");
    assert!(err.to_string().contains("--token-file"), "{err}");
    let empty = state.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let err = Server::bind(options("0.0.0.0:0", Some(empty), state.path())).await.err().expect("refused");
    assert!(err.to_string().contains("empty"), "{err}");
    let missing = state.path().join("missing");
    let err = Server::bind(options("127.0.0.1:0", Some(missing), state.path())).await.err().expect("refused");
    assert!(matches!(err, ServeError::TokenFile { .. }), "{err}");
}

#[tokio::test]
async fn with_a_token_every_route_but_the_page_needs_it_and_no_answer_carries_a_credential() {
    let state = tempfile::tempdir().unwrap();
    write_journal(state.path());
    let token_file = state.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    // Off loopback, with the token: it starts.
    let (addr, stop) = start(options("0.0.0.0:0", Some(token_file), state.path()));
    let status = probed(addr, Some(TOKEN)).await;
    // The probe ran the check with the password in its URL.
    let check = &status["machines"][0]["checks"][0];
    assert!(check["check"].as_str().unwrap().contains("admin:***@"), "{check}");
    let mut answers = Vec::new();
    for route in ROUTES {
        for wrong in [None, Some("nope"), Some(&TOKEN[..TOKEN.len() - 1]), Some(&format!("{TOKEN}x")[..])] {
            let (code, headers, body) = get(addr, route, wrong).await;
            assert_eq!(code, 401, "{route} with {wrong:?}: {body}");
            assert!(headers.contains("www-authenticate"), "{headers}");
            answers.push((route, headers, body));
        }
        let (code, headers, body) = get(addr, route, Some(TOKEN)).await;
        assert_eq!(code, 200, "{route}: {body}");
        answers.push((route, headers, body));
    }
    // The diff is behind the token too (answered 501 here: no builder).
    for wrong in [None, Some("nope")] {
        assert_eq!(get(addr, "/api/diff/web", wrong).await.0, 401);
    }
    assert_eq!(get(addr, "/api/diff/web", Some(TOKEN)).await.0, 501);
    // The page and its assets hold no data: no token needed.
    let (code, _, page) = get(addr, "/", None).await;
    assert_eq!(code, 200);
    assert!(page.contains("<html"), "{page}");
    let (code, _, _) = get(addr, "/assets/no-such-file.js", None).await;
    assert_eq!(code, 404, "not found, not refused");
    answers.push(("/", String::new(), page));
    for (route, headers, body) in &answers {
        for secret in [TOKEN, PASSWORD] {
            assert!(
                !headers.contains(secret) && !body.contains(secret),
                "{route} carries a credential: {headers}\n{body}"
            );
        }
    }
    let metrics = &answers.iter().find(|(r, _, b)| *r == "/metrics" && b.contains("lab_machine_reachable")).unwrap().2;
    assert!(metrics.contains("admin:***@"), "the check's label, redacted: {metrics}");
    stop.send(()).unwrap();
}

#[test]
fn the_token_compares_whole() {
    let token = lab_serve::auth::Token::new(TOKEN);
    assert!(token.matches(TOKEN));
    assert!(!token.matches(&TOKEN[1..]));
    assert!(!token.matches(""));
    assert!(!format!("{token:?}").contains(TOKEN), "Debug shows no token");
}
