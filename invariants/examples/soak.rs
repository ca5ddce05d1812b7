//! Long randomised runs: `cargo run --release -p invariants --example soak -- [--seeds N]
//! [--seed S] [--nodes N] [--replicas N] [--slots N] [--chaos-minutes M]
//! [--on-timeout release|keepWaiting] [--sabotage] [--progress]`.
//!
//! Each seed is one run of [`invariants::chaos::run`]; the summary of each is printed, and
//! the process fails if any run broke an invariant.

use std::time::Duration;

use fleetlock_core::OnDrainTimeout;
use invariants::chaos::{Plan, run};

fn main() {
    // RUST_LOG=info (or finer) follows what the cores decide, for replaying a failing seed.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut plan = Plan::small(0);
    let mut seeds = 10u64;
    let mut first = None;
    let mut progress = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match args[i].as_str() {
            "--seeds" => seeds = value().unwrap_or(seeds),
            "--seed" => first = value(),
            "--nodes" => plan.nodes = value().map_or(plan.nodes, |v| v as usize),
            "--replicas" => plan.replicas = value().map_or(plan.replicas, |v| v as usize),
            "--slots" => plan.slots = value().map_or(plan.slots, |v| v as u32),
            "--chaos-minutes" => {
                plan.chaos = value().map_or(plan.chaos, |m| Duration::from_secs(m * 60));
            }
            "--on-timeout" => {
                plan.on_timeout = match args.get(i + 1).map(String::as_str) {
                    Some("release") => Some(OnDrainTimeout::Release),
                    Some("keepWaiting") => Some(OnDrainTimeout::KeepWaiting),
                    other => {
                        eprintln!("--on-timeout takes release or keepWaiting, not {other:?}");
                        std::process::exit(2);
                    }
                };
            }
            "--sabotage" => {
                plan.sabotage = true;
                i += 1;
                continue;
            }
            "--progress" => {
                progress = true;
                i += 1;
                continue;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let first = first.unwrap_or_else(|| fastrand::u64(..));
    let mut failed = 0;
    let started = std::time::Instant::now();
    for seed in (0..seeds).map(|k| first.wrapping_add(k)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let plan = Plan {
            seed,
            ..plan.clone()
        };
        let report = runtime.block_on(async move {
            let ticker = progress.then(|| {
                tokio::spawn(async {
                    let start = std::time::Instant::now();
                    let mut minutes = 0;
                    loop {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        minutes += 1;
                        eprintln!(
                            "  {minutes} min of cluster time after {:.1} s",
                            start.elapsed().as_secs_f64()
                        );
                    }
                })
            });
            let report = run(plan).await;
            if let Some(t) = ticker {
                t.abort();
            }
            report
        });
        println!("{}", report.summary());
        for v in &report.violations {
            println!("  {v}");
        }
        if !report.violations.is_empty() {
            failed += 1;
        }
    }
    println!(
        "{seeds} runs in {:.0} s, {failed} with violations",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
