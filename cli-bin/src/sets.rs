//! The restart-set commands: `sets`, `restart set NAME`, `cancel set NAME`.

use std::time::Duration;

use anstyle::AnsiColor;
use futures::StreamExt;
use restart_core::SetStatus;
use restart_core::sets::{MemberState, RunState, SetRun};

use crate::backend::{Backend, CliError, Exit};
use crate::output::Io;

fn time(t: Option<jiff::Timestamp>) -> String {
    t.map(|t| t.strftime("%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn run_state(io: &Io<'_>, state: RunState) -> String {
    let (text, color) = match state {
        RunState::Running => ("running", AnsiColor::Yellow),
        RunState::Cancelling => ("cancelling", AnsiColor::Yellow),
        RunState::Complete => ("complete", AnsiColor::Green),
        RunState::Failed => ("failed", AnsiColor::Red),
        RunState::Cancelled => ("cancelled", AnsiColor::Red),
    };
    io.paint(text, color)
}

fn member_state(io: &Io<'_>, state: MemberState) -> String {
    let (text, color) = match state {
        MemberState::Pending => ("pending", AnsiColor::White),
        MemberState::Waiting => ("waiting", AnsiColor::Yellow),
        MemberState::Restarting => ("restarting", AnsiColor::Yellow),
        MemberState::Complete => ("complete", AnsiColor::Green),
        MemberState::Failed => ("failed", AnsiColor::Red),
        MemberState::Skipped => ("skipped", AnsiColor::White),
    };
    io.paint(text, color)
}

/// One line about a run: its state, who started it, how far it got.
fn summary(io: &Io<'_>, run: &SetRun) -> String {
    let (done, all) = run.counts();
    format!(
        "{} by {} at {}, {done}/{all} done{}",
        run_state(io, run.state),
        run.by,
        run.started.strftime("%Y-%m-%d %H:%M:%S"),
        run.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    )
}

/// `restartctl sets [NAME]`: every set with its last run, or one set member by member.
pub(crate) async fn list(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    name: Option<&str>,
) -> Result<Exit, CliError> {
    let sets = backend.sets().await?;
    let Some(name) = name else {
        if !io.structured(&sets) {
            let rows: Vec<Vec<String>> = sets
                .iter()
                .map(|s| {
                    vec![
                        s.set.name.clone(),
                        s.set.members.len().to_string(),
                        s.set.concurrency.to_string(),
                        format!("{:?}", s.set.on_failure).to_lowercase(),
                        s.run
                            .as_ref()
                            .map_or("never run".into(), |r| summary(io, r)),
                    ]
                })
                .collect();
            io.table(
                &["NAME", "MEMBERS", "AT ONCE", "ON FAILURE", "LAST RUN"],
                &rows,
            );
        }
        return Ok(Exit::Ok);
    };
    let Some(set) = sets.into_iter().find(|s| s.set.name == name) else {
        return Err(CliError::restart(
            restart_core::ErrorKind::UnknownSet,
            format!("there is no restart set named {name:?}"),
        ));
    };
    if !io.structured(&set) {
        show(io, &set);
    }
    Ok(Exit::Ok)
}

/// A set, member by member.
fn show(io: &mut Io<'_>, s: &SetStatus) {
    io.line(&format!(
        "{}: {} member{}, {} at once, on failure {}",
        s.set.name,
        s.set.members.len(),
        if s.set.members.len() == 1 { "" } else { "s" },
        s.set.concurrency,
        format!("{:?}", s.set.on_failure).to_lowercase()
    ));
    if let Some(d) = &s.set.description {
        io.line(d);
    }
    if let Some(schedule) = &s.schedule {
        io.line(&format!(
            "schedule {}",
            crate::workloads::schedule_text(schedule)
        ));
    }
    let Some(run) = &s.run else {
        let rows: Vec<Vec<String>> = s.set.members.iter().map(|m| vec![m.to_string()]).collect();
        io.table(&["MEMBER"], &rows);
        return;
    };
    io.line(&format!("run {}", summary(io, run)));
    let rows: Vec<Vec<String>> = run
        .members
        .iter()
        .map(|m| {
            vec![
                m.workload.clone(),
                member_state(io, m.state),
                time(m.started),
                time(m.ended),
                m.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    io.table(&["MEMBER", "STATE", "STARTED", "ENDED", "MESSAGE"], &rows);
}

/// `restartctl restart set NAME`: start a run, and with `--wait` follow it member by member.
pub(crate) async fn start(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    name: &str,
    reason: Option<&str>,
    wait: bool,
    timeout: Duration,
) -> Result<Exit, CliError> {
    // Following from before the start, so no step of the run is missed.
    let updates = if wait {
        Some(backend.set_updates(name).await?)
    } else {
        None
    };
    let started = backend.start_set(name, reason).await?;
    let Some(mut updates) = updates else {
        if !io.structured(&started) {
            let members = started.set.members.len();
            io.line(&format!(
                "restart set {name} started: {members} member{}, {} at once",
                if members == 1 { "" } else { "s" },
                started.set.concurrency
            ));
        }
        return Ok(Exit::Ok);
    };
    let id = started.run.as_ref().map(|r| r.id.clone());
    let follow = async {
        let mut last: Vec<MemberState> = Vec::new();
        let mut end = started.clone();
        while let Some(s) = updates.next().await {
            let Some(run) = s.run.as_ref().filter(|r| Some(&r.id) == id.as_ref()) else {
                continue;
            };
            if io.format == crate::output::Format::Table {
                for (i, m) in run.members.iter().enumerate() {
                    if last.get(i) != Some(&m.state) && m.state != MemberState::Pending {
                        io.line(&format!(
                            "{}  {}  {}{}",
                            time(m.ended.or(m.started).or(Some(run.started))),
                            m.workload,
                            member_state(io, m.state),
                            m.message
                                .as_deref()
                                .map(|t| format!(": {t}"))
                                .unwrap_or_default()
                        ));
                    }
                }
            }
            last = run.members.iter().map(|m| m.state).collect();
            end = s.clone();
            if run.state.is_final() {
                break;
            }
        }
        end
    };
    let Ok(end) = tokio::time::timeout(timeout, follow).await else {
        return Err(CliError::new(
            Exit::RolloutFailed,
            format!(
                "restart set {name} did not finish within {}s",
                timeout.as_secs()
            ),
        )
        .hint("it goes on; `restartctl sets NAME` shows where it is"));
    };
    let state = end.run.as_ref().map(|r| r.state);
    if !io.structured(&end)
        && let Some(run) = &end.run
    {
        io.line(&format!("restart set {name}: {}", summary(io, run)));
    }
    Ok(match state {
        Some(RunState::Complete) => Exit::Ok,
        _ => Exit::RolloutFailed,
    })
}

/// `restartctl cancel set NAME`.
pub(crate) async fn cancel(
    backend: &dyn Backend,
    io: &mut Io<'_>,
    name: &str,
) -> Result<Exit, CliError> {
    let cancelled = backend.cancel_set(name).await?;
    if !io.structured(&cancelled) {
        io.line(&match cancelled {
            Some(_) => format!(
                "restart set {name} cancelled: no further member starts; those restarting finish"
            ),
            None => format!("restart set {name} was not running"),
        });
    }
    Ok(Exit::Ok)
}
