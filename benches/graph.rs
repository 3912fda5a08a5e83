//! Fleet graph at scale: build + validate + order + waves for generated
//! fleets of 100, 1,000 and 10,000 machines with about 3 dependencies each.
//! Target: 10,000 machines under 20 ms, growing linearly.
//!
//!     cargo bench -p lab-core --bench graph -- --warm-up-time 1 --measurement-time 3

use std::collections::BTreeMap;
use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use lab_core::graph::{fleet_problems, Fleet, Limits};
use lab_core::metadata::{Criticality, Machine, MachineMetadata, Orchestration};

/// A deterministic fleet: machine i depends on 3 machines among the 200
/// before it (dependencies stay local, as racks and services are), belongs
/// to one of n/20 groups, 2% critical, 10% high.
fn fleet(n: usize) -> Vec<Machine> {
    let mut state = 0x5EED_u64;
    let mut next = move |below: usize| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % below.max(1)
    };
    let name = |i: usize| format!("host-{i:05}");
    (0..n)
        .map(|i| {
            let mut dependencies: Vec<String> =
                if i == 0 { Vec::new() } else { (0..3).map(|_| name(i - 1 - next(i.min(200)))).collect() };
            dependencies.dedup();
            let criticality = match next(50) {
                0 => Criticality::Critical,
                1..=5 => Criticality::High,
                6..=30 => Criticality::Medium,
                _ => Criticality::Low,
            };
            Machine {
                name: name(i),
                hostname: Some(name(i)),
                services: Vec::new(),
                metadata: MachineMetadata {
                    dependencies,
                    groups: vec![format!("group-{}", next(n / 20))],
                    health_checks: Vec::new(),
                    orchestration: Orchestration { criticality_level: criticality, ..Orchestration::default() },
                    reboot_order: next(10) as i64,
                    role: "server".into(),
                    target_host: None,
                    target_port: 22,
                    target_user: "root".into(),
                },
            }
        })
        .collect()
}

fn graph(c: &mut Criterion) {
    let limits =
        Limits { max_parallel: NonZeroUsize::new(10).unwrap(), max_unavailable_per_group: NonZeroUsize::new(2) };
    let mut group = c.benchmark_group("build_validate_order_waves");
    for n in [100, 1_000, 10_000] {
        let machines = fleet(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &machines, |b, machines| {
            b.iter_batched(
                || machines.clone(),
                |machines| {
                    let fleet = Fleet::new(machines).expect("generated fleet is valid");
                    black_box(fleet.order().len());
                    black_box(fleet.waves(&limits).len());
                    // Dropped by criterion outside the measurement, as a
                    // run of lab drops it at exit.
                    fleet
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("fleet_problems");
    for n in [100, 1_000, 10_000] {
        let machines: BTreeMap<String, Machine> = fleet(n).into_iter().map(|m| (m.name.clone(), m)).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &machines, |b, machines| {
            b.iter(|| black_box(fleet_problems(machines).len()))
        });
    }
    group.finish();
}

criterion_group!(benches, graph);
criterion_main!(benches);
