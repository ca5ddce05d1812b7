//! The simulated cluster measured against the real one: the same questions asked over HTTP of
//! the simulated API endpoint and of a real kube-apiserver, the answers normalised (status
//! code, reason, the message where a client parses it, the fields the adapter reads) and
//! compared one by one.
//!
//! ```sh
//! # both sides, live (the ignored test; scripts/cluster's cluster, whose node names it uses):
//! scripts/cluster up; eval "$(scripts/cluster env)"
//! cargo test -p cluster-sim --features apiserver --test conformance -- --ignored --nocapture
//! # the simulated side alone, against the answers last recorded from the real one
//! # (what plain `cargo test` runs); RM_CONFORMANCE_RECORD=1 with a live run rewrites them:
//! cargo test -p cluster-sim --features apiserver --test conformance -- --nocapture
//! ```
//!
//! Setting up differs per side where the simulation has no API for it (pods turned unready
//! by hand, users and their rights); the questions do not. Every answer that differs must be
//! listed in [`KNOWN`] with the reason, as docs/simulation.md lists it; an answer that
//! differs and is not listed fails the test, and so does a listed one that no longer differs.

mod admin;
mod cases;
mod objects;
mod side;
mod watches;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use cluster_api::Node;
use cluster_sim::SimCluster;
use cluster_sim::access::{AccessRule, UserSpec};
use cluster_sim::apiserver::{ApiServer, Running};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use admin::*;
use cases::*;
use objects::*;
use side::*;
use watches::*;

/// How long any condition on either side may take to come true.
const DEADLINE: Duration = Duration::from_secs(90);

/// The recorded answers of the real API server, compared with when no live one is given.
const RECORDED: &str = include_str!("kube-apiserver.json");

/// Answers known to differ, each with why; docs/simulation.md lists the same.
const KNOWN: &[(&str, &str)] = &[(
    "selectors/label-invalid",
    "the simulation's label selector parser takes `app===` (a value of `=`); the API server \
         refuses it with 400 `unable to parse requirement`",
)];

/// The nodes both sides have (scripts/cluster's names).
const NODES: [&str; 3] = ["rm-node-0", "rm-node-1", "rm-node-2"];

/// The name of the restricted user's ServiceAccount, and its namespace's suffix.
const LIMITED: &str = "conformance-limited";

// === the comparison ===

/// What plain `cargo test` runs: the simulated side asked, its answers compared with those
/// recorded from the real API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_cluster_answers_as_the_recorded_real_one() {
    compare(None).await;
}

/// Both sides asked, live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: scripts/cluster up; eval \"$(scripts/cluster env)\"; cargo test \
            -p cluster-sim --features apiserver --test conformance -- --ignored --nocapture"]
async fn the_simulated_cluster_answers_as_a_live_real_one() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = std::env::var("KUBECONFIG").expect(
        "the live comparison needs KUBECONFIG naming a disposable real cluster's admin \
         kubeconfig (scripts/cluster env prints it)",
    );
    compare(Some(Side::real(&kubeconfig))).await;
}

/// Asks every question of the simulated side and of `real` (or takes the recorded answers),
/// prints the table, and fails on a difference not listed in [`KNOWN`].
async fn compare(real: Option<Side>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let live = real.is_some();
    let sim = Side::simulated().await;
    let run = format!("r{}", std::process::id());
    let started = Instant::now();

    let mut answers: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    let recorded: BTreeMap<String, Value> = if live {
        BTreeMap::new()
    } else {
        serde_json::from_str(RECORDED).expect("the recorded answers are JSON")
    };
    if !live {
        eprintln!(
            "\n!!! No live API server: the simulated cluster is compared with the answers \
             RECORDED from kube-apiserver ({}), not with a running one. The live comparison is \
             the ignored test of this file: scripts/cluster up; eval \"$(scripts/cluster env)\"; \
             cargo test -p cluster-sim --features apiserver --test conformance -- --ignored \
             --nocapture\n",
            recorded
                .get("_source")
                .and_then(Value::as_str)
                .unwrap_or("unknown version")
        );
    }
    let mut namespaces = vec![];
    for case in CASES {
        let ns = format!("conf-{run}-{}", short(case));
        namespaces.push(ns.clone());
        let sim_side = async {
            sim.namespace(&ns).await;
            run_case(case, &sim, &ns).await
        };
        let real_side = async {
            match &real {
                Some(real) => {
                    real.namespace(&ns).await;
                    Some(run_case(case, real, &ns).await)
                }
                None => None,
            }
        };
        let t = Instant::now();
        let (s, r) = futures::join!(sim_side, real_side);
        eprintln!("case {case}: {:.1} s", t.elapsed().as_secs_f64());
        for (question, sim_answer) in s {
            let key = format!("{case}/{question}");
            let real_answer = match &r {
                Some(r) => r.get(&question).cloned().unwrap_or(Value::Null),
                None => recorded.get(&key).cloned().unwrap_or(Value::Null),
            };
            answers.insert(key, (real_answer, sim_answer));
        }
    }
    if let Some(real) = &real {
        for ns in &namespaces {
            real.delete_namespace(ns).await;
        }
    }

    // The namespaces differ in the run's id; answers name them.
    let normalise = |v: &Value| -> Value {
        let text = v.to_string().replace(&run, "<run>");
        serde_json::from_str(&text).unwrap()
    };
    let mut equal = 0;
    let mut unexpected = vec![];
    let mut fixed = vec![];
    println!(
        "\n{:<58} {:<5} {}",
        "question",
        "equal",
        if live {
            "real | sim"
        } else {
            "recorded real | sim"
        }
    );
    for (key, (real_answer, sim_answer)) in &answers {
        let (real_answer, sim_answer) = (normalise(real_answer), normalise(sim_answer));
        let same = real_answer == sim_answer;
        let known = KNOWN.iter().find(|(k, _)| k == key);
        if same {
            equal += 1;
            println!("{key:<58} yes");
            if known.is_some() {
                fixed.push(key.clone());
            }
        } else {
            println!("{key:<58} NO    {real_answer}\n{:<64} {sim_answer}", "");
            if known.is_none() {
                unexpected.push(key.clone());
            }
        }
    }
    println!(
        "\nconformance: {} answers compared{}, {equal} equal, {} known differences, {:.0} s",
        answers.len(),
        if live {
            " live"
        } else {
            " with the recorded ones"
        },
        answers.len() - equal,
        started.elapsed().as_secs_f64(),
    );
    if live && std::env::var("RM_CONFORMANCE_RECORD").as_deref() == Ok("1") {
        let mut record: BTreeMap<String, Value> = answers
            .iter()
            .map(|(k, (real, _))| (k.clone(), normalise(real)))
            .collect();
        let version = real
            .as_ref()
            .unwrap()
            .call(Method::GET, "/version", None)
            .await;
        record.insert(
            "_source".into(),
            json!(format!(
                "{} recorded {}",
                version.body["gitVersion"].as_str().unwrap_or("?"),
                jiff::Timestamp::now().strftime("%Y-%m-%d")
            )),
        );
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/kube-apiserver.json"
        );
        std::fs::write(path, serde_json::to_string_pretty(&record).unwrap() + "\n").unwrap();
        println!("recorded the real answers in {path}");
    }
    assert!(
        unexpected.is_empty(),
        "answers differ that docs/simulation.md does not list: {unexpected:?}"
    );
    assert!(
        fixed.is_empty(),
        "answers listed as differing are now equal; take them out of KNOWN and the docs: {fixed:?}"
    );
}

/// A case's name short enough for a namespace.
fn short(case: &str) -> String {
    let s: String = case
        .split('-')
        .map(|w| w.chars().take(4).collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    s.chars().take(40).collect()
}
