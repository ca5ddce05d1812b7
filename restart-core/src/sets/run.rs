//! A run's rules: how [`SetRun::step`] moves a run on from what its members' locks say.
//! Plain functions of plain values; the service reads the locks and writes the run back.

use cluster_api::{Lease, Timestamp};

use super::{
    MemberProgress, MemberState, OnFailure, RUN_ANNOTATION, RestartSet, RunState, Seen, SetRun,
    Step,
};
use crate::lock::Outcome;

impl SetRun {
    /// A new run of `set`, every member pending.
    pub fn new(
        set: &RestartSet,
        id: String,
        by: &str,
        reason: Option<String>,
        now: Timestamp,
    ) -> Self {
        SetRun {
            id,
            set: set.name.clone(),
            by: by.to_string(),
            reason,
            started: now,
            ended: None,
            state: RunState::Running,
            cancelled_by: None,
            concurrency: set.concurrency,
            on_failure: set.on_failure,
            members: set
                .members
                .iter()
                .map(|w| MemberProgress {
                    workload: w.to_string(),
                    state: MemberState::Pending,
                    started: None,
                    ended: None,
                    message: None,
                })
                .collect(),
        }
    }

    /// The restart id of the member at `position`.
    pub fn restart_id(&self, position: usize) -> String {
        format!("{}.{position}", self.id)
    }

    /// The run a Lease keeps, if it keeps one that can be read.
    pub fn of(lease: &Lease) -> Option<SetRun> {
        serde_json::from_str(lease.annotations.get(RUN_ANNOTATION)?).ok()
    }

    /// Moves the run forward by what the members' locks say (`seen(position)`, asked only
    /// of members that started), at `now`: records members that ended, decides which start
    /// next, and ends the run when nothing is left to do. Pure: the caller writes the run
    /// back (compare-and-swap) before starting anything.
    ///
    /// A restart of a member by anyone that took its lock after the run reached the member
    /// counts as the member's restart: whoever restarted it, its pods were replaced after
    /// the set got there.
    pub fn step(&mut self, seen: impl Fn(usize) -> Seen, now: Timestamp) -> Step {
        let mut step = Step::default();
        if self.state.is_final() {
            return step;
        }
        self.follow_members(&seen, now, &mut step);
        let failed = self.members.iter().any(|m| m.state == MemberState::Failed);
        let stopping =
            self.state == RunState::Cancelling || (failed && self.on_failure == OnFailure::Stop);
        if stopping {
            self.stop(now, &mut step);
        } else {
            self.fill(&mut step);
        }
        self.finish_if_done(now, &mut step);
        step
    }

    /// Records what the locks say of the members that started: running, waiting for
    /// someone else, ended; those whose restart never took the lock are to start again.
    fn follow_members(&mut self, seen: &impl Fn(usize) -> Seen, now: Timestamp, step: &mut Step) {
        for (i, m) in self.members.iter_mut().enumerate() {
            if !matches!(m.state, MemberState::Restarting | MemberState::Waiting) {
                continue;
            }
            let reached = m.started.unwrap_or(self.started);
            let ended = match seen(i) {
                Seen::Running => {
                    if m.state != MemberState::Restarting {
                        m.state = MemberState::Restarting;
                        m.message = None;
                        step.changed = true;
                    }
                    None
                }
                Seen::Ended(outcome) => Some((outcome, ended_message(outcome))),
                Seen::HeldBy(lock) => {
                    let message = Some(format!("waiting for {}'s restart to end", lock.holder));
                    if m.state != MemberState::Waiting || m.message != message {
                        m.state = MemberState::Waiting;
                        m.message = message;
                        step.changed = true;
                    }
                    None
                }
                Seen::Free(Some(last)) if last.at > reached => {
                    let outcome = last.outcome.unwrap_or(Outcome::Aborted);
                    let how = ended_message(outcome);
                    Some((
                        outcome,
                        format!("restarted meanwhile by {}: {how}", last.by),
                    ))
                }
                // Its restart never took the lock (it waited, or its driver stopped first).
                Seen::Free(_) => {
                    step.start.push(i);
                    None
                }
            };
            if let Some((outcome, message)) = ended {
                m.state = if outcome == Outcome::Complete {
                    MemberState::Complete
                } else {
                    MemberState::Failed
                };
                m.ended = Some(now);
                m.message = Some(message);
                step.changed = true;
            }
        }
    }

    /// Nothing new starts; those not restarting are skipped.
    fn stop(&mut self, now: Timestamp, step: &mut Step) {
        for i in std::mem::take(&mut step.start) {
            self.members[i].state = MemberState::Waiting;
        }
        let why = if self.state == RunState::Cancelling {
            "the run was cancelled"
        } else {
            "an earlier member failed"
        };
        for m in &mut self.members {
            let restarting = m.state == MemberState::Restarting;
            if !m.state.is_final() && !restarting {
                m.state = MemberState::Skipped;
                m.ended = Some(now);
                m.message = Some(why.into());
                step.changed = true;
            }
        }
    }

    /// Starts pending members, in order, as far as the concurrency allows.
    fn fill(&self, step: &mut Step) {
        let busy = self
            .members
            .iter()
            .filter(|m| matches!(m.state, MemberState::Restarting | MemberState::Waiting))
            .count();
        let free = self.concurrency.saturating_sub(busy);
        step.start.extend(
            self.members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.state == MemberState::Pending)
                .map(|(i, _)| i)
                .take(free),
        );
    }

    /// Ends the run if every member is final.
    fn finish_if_done(&mut self, now: Timestamp, step: &mut Step) {
        if !self.members.iter().all(|m| m.state.is_final()) {
            return;
        }
        self.state = if self.state == RunState::Cancelling {
            RunState::Cancelled
        } else if self
            .members
            .iter()
            .any(|m| m.state != MemberState::Complete)
        {
            RunState::Failed
        } else {
            RunState::Complete
        };
        self.ended = Some(now);
        step.changed = true;
    }

    /// Records that the member at `position` starts now.
    pub fn mark_started(&mut self, position: usize, now: Timestamp) {
        let m = &mut self.members[position];
        m.state = MemberState::Restarting;
        m.started = Some(now);
        m.message = None;
    }

    /// Records that the member at `position` could not be restarted.
    pub fn mark_failed(&mut self, position: usize, message: String, now: Timestamp) {
        let m = &mut self.members[position];
        m.state = MemberState::Failed;
        m.ended = Some(now);
        m.message = Some(message);
    }

    /// Records that the member at `position` waits for someone else's lock.
    pub fn mark_waiting(&mut self, position: usize, holder: &str) {
        let m = &mut self.members[position];
        m.state = MemberState::Waiting;
        m.message = Some(format!("waiting for {holder}'s restart to end"));
    }

    /// How many members ended, and how many there are.
    pub fn counts(&self) -> (usize, usize) {
        let done = self.members.iter().filter(|m| m.state.is_final()).count();
        (done, self.members.len())
    }
}

fn ended_message(outcome: Outcome) -> String {
    match outcome {
        Outcome::Complete => "rolled out".into(),
        Outcome::Failed => "its rollout failed".into(),
        Outcome::TimedOut => "its rollout did not finish before its lock ran out".into(),
        Outcome::Unlocked => "its lock was broken by an operator".into(),
        Outcome::Aborted => "its restart could not be applied".into(),
    }
}
