//! Health-check fan-out: 1,000 checks (500 http, 500 tcp) against loopback
//! servers, at most 64 at a time, through the same code `lab health` uses.
//! Target: under 1 s. Run with `cargo bench --bench health`; under
//! `cargo test` (no `--bench` argument) it runs once as a smoke test and
//! does not judge the time of an unoptimized build.

use lab_testkit::http;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Behaviour, HttpServer};
use lab_core::health::{check_fleet_once, HttpClients, LocalProber, Prober, Via, DEFAULT_CONCURRENCY};
use lab_core::metadata::{parse_machine, Machine};

const MACHINES: usize = 10;
const CHECKS_PER_KIND: usize = 50;
const RUNS: usize = 7;
const TARGET: Duration = Duration::from_secs(1);

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let runs = if measuring { RUNS } else { 1 };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut servers = Vec::new();
        for i in 0..4u8 {
            servers.push(HttpServer::start(Ipv4Addr::new(127, 0, 0, 51 + i), Behaviour::Status(200)).await);
        }
        let prober: Arc<dyn Prober> = Arc::new(LocalProber::new(HttpClients::default(), Via::Controller));
        let machines: Vec<(Machine, Arc<dyn Prober>)> = (0..MACHINES)
            .map(|m| {
                let mut checks = Vec::new();
                for c in 0..CHECKS_PER_KIND {
                    let server = &servers[(m + c) % servers.len()];
                    checks.push(serde_json::json!({
                        "type": "http", "url": server.url("/health"), "runOn": "controller", "timeout": 5
                    }));
                    checks.push(serde_json::json!({
                        "type": "tcp", "host": server.addr.ip().to_string(), "port": server.addr.port(),
                        "runOn": "controller", "timeout": 5
                    }));
                }
                let json = serde_json::json!({ "role": "bench", "rebootOrder": 0, "healthChecks": checks });
                (parse_machine(&format!("m{m:02}"), json, None).unwrap(), prober.clone())
            })
            .collect();
        let total = MACHINES * CHECKS_PER_KIND * 2;
        let mut times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let reports = check_fleet_once(&machines, DEFAULT_CONCURRENCY).await;
            times.push(start.elapsed());
            assert_eq!(reports.len(), total);
            let failed: Vec<_> = reports.iter().filter(|r| !r.passed).take(3).collect();
            assert!(failed.is_empty(), "checks failed: {failed:#?}");
        }
        times.sort();
        let median = times[runs / 2];
        println!(
            "health fan-out: {total} checks (http+tcp, concurrency {DEFAULT_CONCURRENCY}), {runs} runs: \
             min {:.1} ms, median {:.1} ms, max {:.1} ms (target < {} ms)",
            ms(times[0]),
            ms(median),
            ms(times[runs - 1]),
            TARGET.as_millis()
        );
        if measuring && median >= TARGET {
            eprintln!("health fan-out is over its target");
            std::process::exit(1);
        }
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
