//! The fleet commands: every lock and slot, the nodes' reboot state, pausing a group.

use anstyle::AnsiColor;
use fleetlock_core::preflight::{BudgetCheck, PlannedPod};

use crate::backend::{Backend, CliError, Exit};
use crate::output::{Io, age};

/// `restartctl locks`: every restart lock and reboot slot held.
pub(crate) async fn locks(backend: &dyn Backend, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let statuses = backend.statuses().await?;
    let fleet = backend.fleet().await?;
    let now = fleet.time;
    let restart: Vec<_> = statuses.iter().filter(|s| s.lock.is_some()).collect();
    if io.structured(&serde_json::json!({
        "restartLocks": restart.iter().map(|s| serde_json::json!({"kind": s.kind, "namespace": s.namespace, "name": s.name, "lock": s.lock})).collect::<Vec<_>>(),
        "rebootSlots": fleet.groups.iter().map(|g| serde_json::json!({"group": g.name, "slots": g.slots, "holders": g.holders})).collect::<Vec<_>>(),
    })) {
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = restart
        .iter()
        .filter_map(|s| {
            let l = s.lock.as_ref()?;
            Some(vec![
                format!("{}/{}/{}", s.kind, s.namespace, s.name),
                l.holder.clone(),
                age(l.since, now),
                l.reason.clone().unwrap_or_default(),
            ])
        })
        .collect();
    io.line(&io.bold("Restart locks"));
    io.table(&["WORKLOAD", "HOLDER", "AGE", "REASON"], &rows);
    io.line("");
    io.line(&io.bold("Reboot slots"));
    let rows: Vec<Vec<String>> = fleet
        .groups
        .iter()
        .flat_map(|g| {
            let used = format!(
                "{}/{}{}",
                g.holders.len(),
                g.slots,
                rate_text(g.rate.as_ref())
            );
            let paused = if g.paused {
                " (paused)".to_string()
            } else {
                String::new()
            };
            let holders: Vec<Vec<String>> = g
                .holders
                .iter()
                .map(|h| {
                    vec![
                        g.name.clone(),
                        used.clone(),
                        h.node.clone(),
                        format!("{:?}", h.phase).to_lowercase(),
                        age(h.since, now),
                    ]
                })
                .collect();
            if holders.is_empty() {
                vec![vec![
                    format!("{}{paused}", g.name),
                    used,
                    "-".into(),
                    String::new(),
                    String::new(),
                ]]
            } else {
                holders
            }
        })
        .collect();
    io.table(&["GROUP", "SLOTS", "NODE", "PHASE", "AGE"], &rows);
    Ok(Exit::Ok)
}

/// A group's rate after its slots, as `restartctl locks` shows it: ` (rate 1/3 per 1h)`, and
/// while the window is full, when the next grant can go (` (rate 3/3 per 1h, next 2026-01-05
/// 14:05:00Z)`).
fn rate_text(rate: Option<&fleetlock_core::snapshot::RateSnapshot>) -> String {
    let Some(r) = rate else {
        return String::new();
    };
    let per = fleetlock_core::config::humanize(std::time::Duration::from_secs(r.per_seconds));
    let next = r
        .next_grant_at
        .map(|at| format!(", next {}", at.strftime("%Y-%m-%d %H:%M:%SZ")))
        .unwrap_or_default();
    format!(" (rate {}/{} per {per}{next})", r.granted, r.reboots)
}

/// `restartctl nodes`: each node's reboot state.
pub(crate) async fn nodes(backend: &dyn Backend, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let fleet = backend.fleet().await?;
    if !io.structured(&fleet.nodes) {
        let holders: std::collections::HashMap<&str, &fleetlock_core::snapshot::HolderSnapshot> =
            fleet
                .groups
                .iter()
                .flat_map(|g| g.holders.iter().map(|h| (h.node.as_str(), h)))
                .collect();
        let rows: Vec<Vec<String>> = fleet
            .nodes
            .iter()
            .map(|n| {
                let holder = holders.get(n.name.as_str());
                let cordon = match (n.unschedulable, n.cordoned_by_us) {
                    (true, true) => "by us",
                    (true, false) => "by others",
                    _ => "no",
                };
                let drain = match holder {
                    Some(h) if h.phase == fleetlock_core::HolderPhase::Recovering => {
                        match h.waiting_for.as_slice() {
                            [] => "healed, settling".to_string(),
                            [one] => format!("waiting for {one}"),
                            [first, rest @ ..] => {
                                format!("waiting for {first} (+{} more)", rest.len())
                            }
                        }
                    }
                    Some(h) => h
                        .drain
                        .as_ref()
                        .map(|d| format!("{} left", d.pods_left))
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let rebooted = match holder.and_then(|h| h.rebooted) {
                    Some(true) => "yes",
                    Some(false) => "not yet",
                    None => "",
                };
                let state = match &n.opted_out {
                    Some(_) => format!("{} (no-reboot)", n.state),
                    None => n.state.clone(),
                };
                vec![
                    n.name.clone(),
                    n.holds_slot_in.clone().unwrap_or_default(),
                    state,
                    n.state_since
                        .map(|t| age(t, fleet.time))
                        .unwrap_or_default(),
                    if n.ready {
                        "yes".into()
                    } else {
                        io.paint("no", AnsiColor::Red)
                    },
                    cordon.into(),
                    drain,
                    rebooted.into(),
                ]
            })
            .collect();
        io.table(
            &[
                "NODE",
                "SLOT IN",
                "STATE",
                "SINCE",
                "READY",
                "CORDONED",
                "DRAIN / RECOVERY",
                "BOOT ID CHANGED",
            ],
            &rows,
        );
    }
    Ok(Exit::Ok)
}

/// `restartctl fleet pause|resume`: stop or allow new reboots in a group.
pub(crate) async fn pause(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    group: &str,
    paused: bool,
) -> Result<Exit, CliError> {
    backend.pause(group, paused).await?;
    if !io.structured(&serde_json::json!({ "group": group, "paused": paused })) {
        io.line(&format!(
            "reboot group {group} {}",
            if paused { "paused" } else { "resumed" }
        ));
    }
    Ok(Exit::Ok)
}

/// `restartctl plan node NODE`: what a drain of the node would do now; exit 7 when it could
/// not finish (a `pre-reboot` would be refused with `drain_would_block`).
pub(crate) async fn plan(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    node: &str,
) -> Result<Exit, CliError> {
    let plan = backend.plan(node).await?;
    let exit = if plan.blocked.is_some() {
        Exit::FleetLockRefused
    } else {
        Exit::Ok
    };
    if io.structured(&plan) {
        return Ok(exit);
    }
    match &plan.blocked {
        Some(why) => io.line(&format!(
            "{} the drain of {node} could not finish: {why}",
            io.paint("BLOCKED", AnsiColor::Red)
        )),
        None => io.line(&format!(
            "the drain of {node} can finish: {} pods to evict, about {} s",
            plan.evict.len(),
            plan.estimated_seconds
        )),
    }
    let evict = plan.evict.iter().map(evict_row).collect();
    let refuse = plan
        .refuse
        .iter()
        .map(|p| vec![p.pod.clone(), p.reason.describe().to_string()])
        .collect();
    let budgets = plan.budgets.iter().map(budget_row).collect();
    let wait = plan
        .wait
        .iter()
        .map(|w| vec![w.pod.clone(), format!("{}s", w.limit_seconds)])
        .collect();
    let skip = plan
        .skip
        .iter()
        .map(|p| vec![p.pod.clone(), p.reason.describe().to_string()])
        .collect();
    io.sections([
        ("Evict", &["POD", "GRACE", "NOTE"][..], evict),
        (
            "Wait for completion (a drain rule)",
            &["POD", "EVICTED ANYWAY AFTER"][..],
            wait,
        ),
        ("Stop the drain", &["POD", "REASON"][..], refuse),
        (
            "Disruption budgets",
            &[
                "BUDGET",
                "PODS HERE",
                "ALLOWED",
                "HEALTHY/WANTED",
                "VERDICT",
            ][..],
            budgets,
        ),
        ("Stay on the node", &["POD", "WHY"][..], skip),
    ]);
    Ok(exit)
}

/// A row of the plan's evictions: the pod, its grace period, and what evicting it costs.
fn evict_row(p: &PlannedPod) -> Vec<String> {
    let mut notes = Vec::new();
    if p.priority != 0 {
        notes.push(format!("priority {}", p.priority));
    }
    if p.unmanaged {
        notes.push("no controller: will not come back".into());
    }
    if p.empty_dir {
        notes.push("emptyDir data lost".into());
    }
    vec![
        p.pod.clone(),
        format!("{}s", p.grace_seconds),
        notes.join("; "),
    ]
}

/// A row of the plan's disruption budgets.
fn budget_row(b: &BudgetCheck) -> Vec<String> {
    vec![
        b.budget.clone(),
        b.pods.join(", "),
        b.disruptions_allowed.to_string(),
        format!(
            "{}/{} of {}",
            b.current_healthy, b.desired_healthy, b.expected_pods
        ),
        b.verdict.describe().to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use fleetlock_core::snapshot::RateSnapshot;

    use super::rate_text;

    #[test]
    fn a_rate_follows_the_slots_with_the_next_grant_while_full() {
        assert_eq!(rate_text(None), "");
        let mut rate = RateSnapshot {
            reboots: 3,
            per_seconds: 3600,
            granted: 1,
            next_grant_at: None,
        };
        assert_eq!(rate_text(Some(&rate)), " (rate 1/3 per 1h)");
        rate.granted = 3;
        rate.next_grant_at = Some("2026-01-05T14:05:00Z".parse().unwrap());
        assert_eq!(
            rate_text(Some(&rate)),
            " (rate 3/3 per 1h, next 2026-01-05 14:05:00Z)"
        );
    }
}
