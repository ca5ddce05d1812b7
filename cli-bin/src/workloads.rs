//! The workload commands: list, status, restart (and wait), watch, history, unlock.

use std::time::Duration;

use anstyle::AnsiColor;
use cluster_api::WorkloadRef;
use futures::StreamExt;
use restart_core::{ErrorKind, Phase, ServiceStatus};

use crate::backend::{Backend, CliError, Exit};
use crate::output::{Io, age};

/// `restartctl list`: every allowlisted workload, one row each.
pub(crate) async fn list(backend: &dyn Backend, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let statuses = backend.statuses().await?;
    if !io.structured(&statuses) {
        let now = jiff::Timestamp::now();
        let rows: Vec<Vec<String>> = statuses.iter().map(|s| status_row(io, s, now)).collect();
        io.table(
            &[
                "KIND",
                "NAMESPACE",
                "NAME",
                "PHASE",
                "UPDATED",
                "READY",
                "LOCKED BY",
                "LAST RESTART",
            ],
            &rows,
        );
    }
    Ok(Exit::Ok)
}

/// `restartctl status`: one workload in full.
pub(crate) async fn status(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    w: &WorkloadRef,
) -> Result<Exit, CliError> {
    let s = backend.status(w).await?;
    if !io.structured(&s) {
        print_status(io, &s);
    }
    Ok(Exit::Ok)
}

/// `restartctl restart`: restart a workload, and with `--wait` follow its rollout to the end.
/// `restartctl restart --dry-run`: what a restart would do; exit 4 if it would be refused.
pub(crate) async fn dry_run(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    w: &WorkloadRef,
    reason: Option<&str>,
) -> Result<Exit, CliError> {
    let plan = backend.dry_run(w, reason).await?;
    let exit = match &plan.refusal {
        None => Exit::Ok,
        Some(r) => match ErrorKind::parse(&r.kind) {
            Some(kind) => CliError::restart(kind, String::new()).exit,
            None => Exit::Refused,
        },
    };
    if io.structured(&plan) {
        return Ok(exit);
    }
    match &plan.refusal {
        None => io.line(&format!(
            "a restart of {w} would go ahead: {} pod{} replaced ({})",
            plan.pods.len(),
            if plan.pods.len() == 1 { "" } else { "s" },
            plan.strategy
        )),
        Some(r) => io.line(&format!(
            "{} a restart of {w} would be refused: {}",
            io.paint("REFUSED", AnsiColor::Red),
            r.message
        )),
    }
    if let Some(lock) = &plan.lock {
        io.line(&format!(
            "locked by {} since {}{}",
            lock.holder,
            lock.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            lock.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    let pods: Vec<Vec<String>> = plan
        .pods
        .iter()
        .map(|p| {
            vec![
                p.pod.clone(),
                p.node.clone().unwrap_or_default(),
                if p.ready { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    let budgets: Vec<Vec<String>> = plan
        .budgets
        .iter()
        .map(|b| {
            vec![
                b.budget.clone(),
                b.disruptions_allowed.to_string(),
                format!("{}/{}", b.current_healthy, b.desired_healthy),
            ]
        })
        .collect();
    io.sections([
        ("Pods it would replace", &["POD", "NODE", "READY"][..], pods),
        (
            "Disruption budgets over them",
            &["BUDGET", "ALLOWED", "HEALTHY/WANTED"][..],
            budgets,
        ),
    ]);
    io.line("");
    io.line("(dry run: nothing was changed)");
    Ok(exit)
}

pub(crate) async fn restart(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    w: &WorkloadRef,
    reason: Option<&str>,
    wait: bool,
    timeout: Duration,
) -> Result<Exit, CliError> {
    let started = backend.restart(w, reason).await?;
    if !wait {
        if !io.structured(&started) {
            io.line(&format!(
                "{w} restarting (locked by {})",
                started.lock.as_ref().map_or("you", |l| l.holder.as_str())
            ));
        }
        return Ok(Exit::Ok);
    }
    let done = tokio::time::timeout(timeout, wait_for(backend, w, io)).await;
    let Ok(done) = done else {
        return Err(CliError::new(
            Exit::RolloutFailed,
            format!("{w} did not finish within {}s", timeout.as_secs()),
        )
        .hint("`restartctl watch` follows it further"));
    };
    let done = done?;
    if !io.structured(&done) {
        io.line(&format!("{w}: {}", done.message));
    }
    Ok(if done.phase == Phase::Complete {
        Exit::Ok
    } else {
        Exit::RolloutFailed
    })
}

/// `restartctl watch`: every change as it happens, for one workload or all.
pub(crate) async fn watch(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    only: Option<&WorkloadRef>,
    count: Option<usize>,
) -> Result<Exit, CliError> {
    let mut updates = backend.updates(only).await?;
    let mut seen = 0;
    while let Some(s) = updates.next().await {
        if !io.structured(&s) {
            let line = format!(
                "{}  {}/{}/{}  {}  {}/{} updated, {} ready{}",
                jiff::Timestamp::now().strftime("%H:%M:%S"),
                s.kind,
                s.namespace,
                s.name,
                phase(io, s.phase),
                s.updated,
                s.desired,
                s.ready,
                s.lock
                    .as_ref()
                    .map(|l| format!(", locked by {}", l.holder))
                    .unwrap_or_default()
            );
            io.line(&line);
        }
        let _ = io.out.flush();
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(Exit::Ok)
}

/// `restartctl history`: a workload's restarts, from its Events.
pub(crate) async fn history(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    w: &WorkloadRef,
) -> Result<Exit, CliError> {
    let history = backend.history(w).await?;
    if !io.structured(&history) {
        let rows: Vec<Vec<String>> = history
            .iter()
            .map(|h| {
                vec![
                    h.time
                        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                    format!("{:?}", h.type_),
                    h.reason.clone(),
                    if h.count > 1 {
                        format!("{} (x{})", h.message, h.count)
                    } else {
                        h.message.clone()
                    },
                ]
            })
            .collect();
        io.table(&["TIME", "TYPE", "REASON", "MESSAGE"], &rows);
    }
    Ok(Exit::Ok)
}

/// `restartctl unlock`: break a workload's restart lock.
pub(crate) async fn unlock(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    w: &WorkloadRef,
    reason: &str,
) -> Result<Exit, CliError> {
    let released = backend.unlock(w, reason).await?;
    if !io.structured(&serde_json::json!({ "released": released })) {
        match released {
            Some(l) => io.line(&format!(
                "{w}: broke the lock held by {} since {}",
                l.holder,
                l.since.strftime("%Y-%m-%d %H:%M:%S")
            )),
            None => io.line(&format!("{w}: no lock was held")),
        }
    }
    Ok(Exit::Ok)
}

fn phase(io: &Io<'_>, p: Phase) -> String {
    let (text, color) = match p {
        Phase::Idle => ("idle", AnsiColor::Green),
        Phase::Complete => ("complete", AnsiColor::Green),
        Phase::Restarting => ("restarting", AnsiColor::Blue),
        Phase::Progressing => ("progressing", AnsiColor::Blue),
        Phase::Failed => ("failed", AnsiColor::Red),
        Phase::TimedOut => ("timed out", AnsiColor::Red),
    };
    io.paint(text, color)
}

fn status_row(io: &Io<'_>, s: &ServiceStatus, now: jiff::Timestamp) -> Vec<String> {
    vec![
        s.kind.to_string(),
        s.namespace.clone(),
        s.name.clone(),
        if s.exists {
            phase(io, s.phase)
        } else {
            io.paint("missing", AnsiColor::Red)
        },
        format!("{}/{}", s.updated, s.desired),
        s.ready.to_string(),
        s.lock
            .as_ref()
            .map(|l| format!("{} ({})", l.holder, age(l.since, now)))
            .unwrap_or_default(),
        s.last_restart
            .as_ref()
            .map(|r| format!("{} ago by {}", age(r.at, now), r.by))
            .unwrap_or_default(),
    ]
}

fn print_status(io: &mut Io<'_>, s: &ServiceStatus) {
    let now = jiff::Timestamp::now();
    let phase = if s.exists {
        phase(io, s.phase)
    } else {
        io.paint("missing", AnsiColor::Red)
    };
    let mut lines = vec![
        format!("Workload:      {}/{}/{}", s.kind, s.namespace, s.name),
        format!("Phase:         {phase}"),
        format!(
            "Replicas:      {} desired, {} updated, {} ready, {} available",
            s.desired, s.updated, s.ready, s.available
        ),
        format!("Rollout:       {}", s.message),
    ];
    if let Some(d) = &s.description {
        lines.insert(1, format!("Description:   {d}"));
    }
    if let Some(l) = &s.lock {
        lines.push(format!(
            "Locked by:     {} for {}{}",
            l.holder,
            age(l.since, now),
            l.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    if let Some(r) = &s.last_restart {
        let outcome = r
            .outcome
            .map(|o| format!(" ({})", o.as_str()))
            .unwrap_or_default();
        lines.push(format!(
            "Last restart:  {} ago by {}{outcome}{}",
            age(r.at, now),
            r.by,
            r.reason
                .as_ref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        ));
    }
    if !s.windows.is_empty() {
        lines.push(format!("Windows:       {}", s.windows.join("; ")));
    }
    if let Some(schedule) = &s.schedule {
        lines.push(format!("Schedule:      {}", schedule_text(schedule)));
    }
    for l in lines {
        io.line(&l);
    }
}

/// A schedule in a line: the expression, when it fires next, how the last due time went.
pub(crate) fn schedule_text(s: &restart_core::schedule::ScheduleStatus) -> String {
    let when = |t: jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    let mut text = s.cron.clone();
    if let Some(next) = s.next {
        text.push_str(&format!("; next {}", when(next)));
    }
    if let Some(last) = &s.last {
        let state = format!("{:?}", last.state).to_lowercase();
        text.push_str(&format!("; last {} {state}", when(last.due)));
    }
    text
}

/// Follows a restart to its end, with a progress bar on a terminal.
async fn wait_for(
    backend: &dyn Backend,
    w: &WorkloadRef,
    io: &mut Io<'_>,
) -> Result<ServiceStatus, CliError> {
    let mut updates = backend.updates(Some(w)).await?;
    let bar = io.terminal.then(|| {
        let bar = indicatif::ProgressBar::new(1);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {pos}/{len} updated  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(w.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut last = None;
    while let Some(s) = updates.next().await {
        match &bar {
            Some(bar) => {
                bar.set_length(u64::try_from(s.desired.max(1)).unwrap_or(1));
                bar.set_position(u64::try_from(s.updated.max(0)).unwrap_or(0));
                bar.set_message(format!("{} ready · {:?}", s.ready, s.phase).to_lowercase());
            }
            None if last != Some((s.phase, s.updated, s.ready)) => {
                io.line(&format!(
                    "{w}: {} {}/{} updated, {} ready",
                    phase(io, s.phase),
                    s.updated,
                    s.desired,
                    s.ready
                ));
                last = Some((s.phase, s.updated, s.ready));
            }
            None => {}
        }
        let finished = s.lock.is_none() && !matches!(s.phase, Phase::Restarting);
        if finished {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            return Ok(s);
        }
    }
    Err(CliError::new(
        Exit::Failure,
        "the status stream ended before the rollout did",
    )
    .hint("`restartctl status` shows where it is"))
}
