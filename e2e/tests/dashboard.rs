//! The dashboard in a real browser: Debian's chromium, headless, driven
//! over WebDriver (chromedriver) by fantoccini, against `lab serve` on a
//! fleet of namespaced test hosts. The page loads, shows every machine in
//! its table and its graph, shows the steps of a real `lab deploy` appear
//! while that deploy runs, draws the finished run's timeline with its
//! critical path, follows a machine turning unhealthy within the probe
//! interval, and asks for the token when the server wants one.
//!
//! The screenshot of the first test is written to
//! `$CARGO_TARGET_TMPDIR/dashboard.png`, and also to `$LAB_DASHBOARD_PNG`
//! when set (`LAB_DASHBOARD_PNG=$PWD/docs/dashboard.png` renews the
//! README's picture).
//!
//! Needs root, nix, sshd, chromium and chromium-driver, and
//! `cargo build -p lab-cli -p lab-e2e` first.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use lab_e2e::run::lab_command;
use lab_e2e::served::Served;
use lab_e2e::{FleetSpec, HostSpec, SystemSpec, TestFleet};
use serde_json::{json, Value};

/// Bound on a lab run, the first probe, and anything the page waits for.
const RUN: Duration = Duration::from_secs(240);
/// The server's probe interval in these tests.
const INTERVAL: u64 = 2;

/// A child process killed (and reaped) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lab serve` on a free loopback port, probing every INTERVAL.
fn serve(fleet: &TestFleet, state: &Path, extra: &[&str]) -> Served {
    let interval = INTERVAL.to_string();
    let mut args = vec!["serve", "--port", "0", "--interval", &interval];
    args.extend_from_slice(extra);
    let mut cmd = lab_command(fleet, state, &args);
    cmd.args(["--ssh-option", "ConnectTimeout=3"]);
    Served::start(cmd, RUN)
}

/// chromedriver on a free port, and a headless chromium session through it.
async fn browser() -> (Killed, Client) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (Debian's chromium-driver; ./dev setup installs it)");
    let driver = Killed(driver);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            // Root in a container: no sandbox; no GPU; /dev/shm may be small.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1400", "--lang=en-GB"],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session");
    (driver, client)
}

/// Evaluates `script` (a function body returning a value) until the value
/// satisfies `done`, every 200 ms, for at most `within`; returns it.
async fn until(client: &Client, within: Duration, script: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = client.execute(script, vec![]).await.unwrap_or(Value::Null);
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("after {within:?} the page still says {last} for: {script}");
}

/// The `data-machine` of each element matching `selector`.
fn machines_of(selector: &str) -> String {
    format!("return Array.from(document.querySelectorAll('{selector}')).map(e => e.getAttribute('data-machine'));")
}

fn host(name: &str, deps: &[&str]) -> HostSpec {
    let mut h = HostSpec::new(name).depends_on(deps);
    // Long enough that a deploy is still running when its first steps show.
    h.metadata.orchestration.min_healthy_time = 2;
    h
}

#[tokio::test(flavor = "current_thread")]
async fn the_page_shows_the_fleet_and_a_deploy_as_it_happens() {
    let names = ["api", "cache", "db", "web"];
    let mut fleet = TestFleet::start(FleetSpec::new(vec![
        host("db", &[]),
        host("cache", &[]),
        host("web", &["db"]),
        host("api", &["db"]),
    ]))
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    // web's new system brings one package more: what the diff must show.
    let gen2 = names.map(|n| {
        (n, if n == "web" { SystemSpec::healthy().with_packages(&[("hello", "2.12")]) } else { SystemSpec::healthy() })
    });
    fleet.write_generation(2, &gen2).unwrap();
    let serve = serve(&fleet, state.path(), &[]);
    let (_driver, client) = browser().await;
    client.goto(&serve.url).await.unwrap();

    // Every machine in the table (after the first probe) and in the graph.
    let rows =
        until(&client, RUN, &machines_of("#fleet tbody tr"), |v| v.as_array().is_some_and(|a| a.len() == 4)).await;
    assert_eq!(rows, json!(names), "{}", serve.log());
    let nodes =
        until(&client, RUN, &machines_of("#graph g.node"), |v| v.as_array().is_some_and(|a| !a.is_empty())).await;
    let mut nodes: Vec<String> = serde_json::from_value(nodes).unwrap();
    nodes.sort();
    assert_eq!(nodes, names);
    let waves = client.execute("return document.querySelectorAll('#graph g.wave').length;", vec![]).await.unwrap();
    assert_eq!(waves, json!(4), "one machine a wave (no maxParallel): {waves}");
    let outdated = client
        .execute("return Array.from(document.querySelectorAll('#fleet tbody tr td')).filter(c => c.textContent === 'OUTDATED').length;", vec![])
        .await
        .unwrap();
    assert_eq!(outdated, json!(4), "generation 2 is written, not deployed: every machine is outdated");

    // What a deploy would change on web, asked for from the page: the
    // server builds web's new system and reads the running one on web.
    client.execute("document.querySelector('#diff-machine').value = 'web';", vec![]).await.unwrap();
    client.find(Locator::Css("#diff-go")).await.unwrap().click().await.unwrap();
    let diff = until(&client, RUN, "return document.querySelector('#diff').textContent;", |v| {
        v.as_str().is_some_and(|t| t.starts_with("web"))
    })
    .await;
    let diff = diff.as_str().unwrap();
    assert!(diff.starts_with("web: 0 changed, 1 added, 0 removed, no reboot"), "{diff}\n{}", serve.log());
    assert!(diff.contains("Added (1)hello 2.12"), "{diff}");
    until(&client, RUN, "return document.querySelector('#conn').textContent;", |v| v == "live").await;

    // A real deploy: its first step shows on the page while it still runs.
    let mut deploy = lab_command(&fleet, state.path(), &["deploy", "--max-parallel", "2"]);
    let mut deploy = Killed(deploy.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let first = until(&client, RUN, "return Array.from(document.querySelectorAll('#live tbody tr[data-step]')).map(r => r.getAttribute('data-step'));", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let running = deploy.0.try_wait().unwrap().is_none();
    assert!(running, "the deploy had already ended when its first step showed: {first}");
    let step = first[0].as_str().unwrap();
    assert!(step.starts_with("deploy/") && names.iter().any(|n| step.contains(&format!("/{n}/"))), "{step}");

    let status = {
        let deadline = Instant::now() + RUN;
        loop {
            if let Some(status) = deploy.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the deploy did not end within {RUN:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert!(status.success(), "the deploy failed: {status}");
    // web runs its new system now: the diff shown before is withdrawn.
    until(&client, RUN, "return document.querySelector('#diff').textContent;", |v| {
        v.as_str().is_some_and(|t| t.starts_with("web runs another system since"))
    })
    .await;
    // Every machine's health checks finished, live; the run ended well.
    let healthy = until(
        &client,
        RUN,
        "return Array.from(document.querySelectorAll('#live tbody tr.state-finished[data-step$=\"/health-checks\"]')).map(r => r.getAttribute('data-machine')).sort();",
        |v| v.as_array().is_some_and(|a| a.len() == 4),
    )
    .await;
    assert_eq!(healthy, json!(names));
    until(&client, RUN, "return document.querySelector('#live-title').textContent;", |v| {
        v.as_str().is_some_and(|t| t.contains("success"))
    })
    .await;

    // The finished run as a timeline: a lane per machine, the critical
    // path marked, ending with the last machine's health checks.
    let lanes =
        until(&client, RUN, &machines_of("#timeline .lane"), |v| v.as_array().is_some_and(|a| a.len() == 4)).await;
    assert_eq!(lanes, json!(names));
    let critical = client
        .execute("return Array.from(document.querySelectorAll('#timeline .seg.critical')).map(s => s.getAttribute('data-step'));", vec![])
        .await
        .unwrap();
    let critical: Vec<String> = serde_json::from_value(critical).unwrap();
    assert!(critical.iter().any(|s| s.ends_with("/build")), "{critical:?}");
    assert!(critical.iter().any(|s| s.ends_with("/health-checks")), "{critical:?}");

    // The table follows the machines: up to date after the deploy, and a
    // machine turning unhealthy shows within a probe interval or two.
    until(
        &client,
        RUN,
        "return Array.from(document.querySelectorAll('#fleet td')).filter(c => c.textContent === 'up to date').length;",
        |v| v == 4,
    )
    .await;
    fleet.host("web").set_health("503").unwrap();
    let since = Instant::now();
    let within = Duration::from_secs(INTERVAL * 2 + 30);
    until(&client, within, "return document.querySelector('#fleet tr[data-machine=\"web\"]').textContent;", |v| {
        v.as_str().is_some_and(|t| t.contains("FAILING"))
    })
    .await;
    eprintln!("the page showed web failing {:.1} s after it turned unhealthy", since.elapsed().as_secs_f64());

    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "a PNG of the page ({} bytes)", png.len());
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"), &png).unwrap();
    if let Some(path) = std::env::var_os("LAB_DASHBOARD_PNG") {
        std::fs::write(path, &png).unwrap();
    }
    client.close().await.unwrap();
    drop(serve);
    fleet.teardown().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn the_page_asks_for_the_token_and_keeps_it_for_the_tab() {
    let fleet = TestFleet::start(FleetSpec::new(vec![HostSpec::new("solo")])).unwrap();
    let state = tempfile::tempdir().unwrap();
    let token = "e2e-dashboard-token-7f3a";
    let token_file = state.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let serve = serve(&fleet, state.path(), &["--token-file", token_file.to_str().unwrap()]);
    let (_driver, client) = browser().await;
    client.goto(&serve.url).await.unwrap();

    // The page itself loads without the token; the API answers 401, so it asks.
    until(&client, RUN, "return document.querySelector('#token-dialog').open;", |v| v == true).await;
    let rows = client.execute("return document.querySelectorAll('#fleet tbody tr').length;", vec![]).await.unwrap();
    assert_eq!(rows, json!(0), "nothing shown without the token");

    // A wrong token is refused and asked for again.
    let input = client.find(Locator::Css("#token-input")).await.unwrap();
    input.send_keys("wrong-token").await.unwrap();
    client.find(Locator::Css("#token-form button")).await.unwrap().click().await.unwrap();
    until(&client, RUN, "const d = document.querySelector('#token-dialog'); return d.open && !document.querySelector('#token-error').hidden;", |v| v == true).await;

    // The right one opens the page, and stays for this tab only.
    let input = client.find(Locator::Css("#token-input")).await.unwrap();
    input.send_keys(token).await.unwrap();
    client.find(Locator::Css("#token-form button")).await.unwrap().click().await.unwrap();
    let rows =
        until(&client, RUN, &machines_of("#fleet tbody tr"), |v| v.as_array().is_some_and(|a| a.len() == 1)).await;
    assert_eq!(rows, json!(["solo"]), "{}", serve.log());
    until(&client, RUN, "return document.querySelector('#conn').textContent;", |v| v == "live").await;
    let kept =
        client.execute("return [sessionStorage.getItem('lab-token'), localStorage.length];", vec![]).await.unwrap();
    assert_eq!(kept, json!([token, 0]));
    // No credential in the page itself.
    let source = client.source().await.unwrap();
    assert!(!source.contains(token), "the token is not written into the page");
    client.close().await.unwrap();
    drop(serve);
    fleet.teardown().unwrap();
}
