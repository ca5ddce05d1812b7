use std::time::Duration;

use super::*;
use crate::config::RateLimit;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn rated(reboots: u32, per: Duration) -> GroupConfig {
    GroupConfig {
        slots: 5,
        rate: Some(RateLimit { reboots, per }),
        ..GroupConfig::default()
    }
}

fn granted_at(times: &[&str]) -> GroupState {
    GroupState {
        recent_grants: times.iter().map(|t| at(t)).collect(),
        ..GroupState::empty("workers")
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn exactly_n_grants_in_the_window_refuse_and_say_when_the_next_can_go() {
    let config = rated(3, HOUR);
    let state = granted_at(&[
        "2026-01-05T13:05:00Z",
        "2026-01-05T13:30:00Z",
        "2026-01-05T14:00:00Z",
    ]);
    let refusal = check_grant("workers", &config, &state, at("2026-01-05T14:04:59Z")).unwrap_err();
    assert_eq!(refusal.kind, Kind::RateLimited);
    assert_eq!(
        refusal.value,
        "group workers granted 3 reboots in the last 1h (its rate: 3 reboots per 1h); the next \
         can be granted at 2026-01-05T14:05:00Z"
    );
}

#[test]
fn a_grant_ages_out_exactly_per_after_it() {
    let config = rated(3, HOUR);
    let state = granted_at(&[
        "2026-01-05T13:05:00Z",
        "2026-01-05T13:30:00Z",
        "2026-01-05T14:00:00Z",
    ]);
    check_grant("workers", &config, &state, at("2026-01-05T14:05:00Z")).unwrap();
    // One fewer than the rate allows is fine at any time.
    let two = granted_at(&["2026-01-05T13:30:00Z", "2026-01-05T14:00:00Z"]);
    check_grant("workers", &config, &two, at("2026-01-05T14:00:01Z")).unwrap();
}

#[test]
fn without_a_rate_recent_grants_do_not_count_and_are_forgotten() {
    let config = GroupConfig {
        slots: 5,
        ..GroupConfig::default()
    };
    let mut state = granted_at(&["2026-01-05T13:59:00Z", "2026-01-05T14:00:00Z"]);
    check_grant("workers", &config, &state, at("2026-01-05T14:00:01Z")).unwrap();
    record_grant(&config, &mut state, at("2026-01-05T14:00:01Z"));
    assert!(state.recent_grants.is_empty());
}

#[test]
fn a_grant_is_recorded_with_at_most_the_last_n_that_still_count() {
    let config = rated(2, HOUR);
    let mut state = granted_at(&["2026-01-05T12:00:00Z", "2026-01-05T13:30:00Z"]);
    record_grant(&config, &mut state, at("2026-01-05T14:00:00Z"));
    // The one from 12:00 aged out; both others count.
    assert_eq!(
        state.recent_grants,
        [at("2026-01-05T13:30:00Z"), at("2026-01-05T14:00:00Z")]
    );
    record_grant(&config, &mut state, at("2026-01-05T14:10:00Z"));
    assert_eq!(
        state.recent_grants,
        [at("2026-01-05T14:00:00Z"), at("2026-01-05T14:10:00Z")]
    );
    // A replica whose clock runs behind records its grant in order.
    record_grant(&config, &mut state, at("2026-01-05T14:05:00Z"));
    assert_eq!(
        state.recent_grants,
        [at("2026-01-05T14:05:00Z"), at("2026-01-05T14:10:00Z")]
    );
}

#[test]
fn a_lowered_rate_waits_for_enough_grants_to_age_out() {
    // Recorded under `reboots: 3`, read under `reboots: 1`: the next grant waits for the
    // latest of the three to age out, not the oldest.
    let config = rated(1, HOUR);
    let state = granted_at(&[
        "2026-01-05T13:10:00Z",
        "2026-01-05T13:20:00Z",
        "2026-01-05T13:30:00Z",
    ]);
    let rate = config.rate.unwrap();
    assert_eq!(
        rate.at(&state.recent_grants, at("2026-01-05T14:15:00Z")),
        RateNow {
            granted: 2,
            next_at: Some(at("2026-01-05T14:30:00Z"))
        }
    );
    let refusal = check_grant("workers", &config, &state, at("2026-01-05T14:15:00Z")).unwrap_err();
    assert!(refusal.value.contains("granted 2 reboots"), "{refusal}");
}
