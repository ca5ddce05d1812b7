use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn next(expr: &str, tz: Option<&str>, after: &str) -> String {
    let cron = Cron::parse(expr, tz).unwrap();
    cron.next_after(at(after))
        .unwrap()
        .to_zoned(cron.tz.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[test]
fn fields_steps_ranges_lists_and_names() {
    assert_eq!(
        next("0 3 * * *", None, "2026-11-26T10:00:00Z"),
        "2026-11-27 03:00 UTC"
    );
    assert_eq!(
        next("0 3 * * *", None, "2026-11-26T02:59:59Z"),
        "2026-11-26 03:00 UTC"
    );
    // Strictly after: at 03:00 itself, the next is tomorrow's.
    assert_eq!(
        next("0 3 * * *", None, "2026-11-26T03:00:00Z"),
        "2026-11-27 03:00 UTC"
    );
    assert_eq!(
        next("*/15 * * * *", None, "2026-11-26T10:16:00Z"),
        "2026-11-26 10:30 UTC"
    );
    assert_eq!(
        next("5-10/5 * * * *", None, "2026-11-26T10:06:00Z"),
        "2026-11-26 10:10 UTC"
    );
    assert_eq!(
        next("30/15 * * * *", None, "2026-11-26T10:46:00Z"),
        "2026-11-26 11:30 UTC"
    );
    assert_eq!(
        next("0 9,17 * * *", None, "2026-11-26T10:00:00Z"),
        "2026-11-26 17:00 UTC"
    );
    // 2026-11-26 is a Thursday; weekdays by number (1 = Monday, as in crontab) and by name.
    assert_eq!(
        next("0 0 * * 1", None, "2026-11-26T10:00:00Z"),
        "2026-11-30 00:00 UTC"
    );
    assert_eq!(
        next("0 0 * * mon-fri", None, "2026-11-27T10:00:00Z"),
        "2026-11-30 00:00 UTC"
    );
    assert_eq!(
        next("0 0 * * 7", None, "2026-11-26T10:00:00Z"),
        "2026-11-29 00:00 UTC"
    );
    assert_eq!(
        next("0 0 * * SUN", None, "2026-11-26T10:00:00Z"),
        "2026-11-29 00:00 UTC"
    );
    assert_eq!(
        next("0 0 1 jan *", None, "2026-11-26T10:00:00Z"),
        "2027-01-01 00:00 UTC"
    );
    assert_eq!(
        next("@monthly", None, "2026-11-26T10:00:00Z"),
        "2026-12-01 00:00 UTC"
    );
    assert_eq!(
        next("@weekly", None, "2026-11-26T10:00:00Z"),
        "2026-11-29 00:00 UTC"
    );
    // Both day fields restricted: either matches (the 1st, or a Monday), as Vixie cron does.
    assert_eq!(
        next("0 0 1 * mon", None, "2026-11-26T10:00:00Z"),
        "2026-11-30 00:00 UTC"
    );
    // Leap days.
    assert_eq!(
        next("0 0 29 2 *", None, "2026-11-26T10:00:00Z"),
        "2028-02-29 00:00 UTC"
    );
}

#[test]
fn wall_clock_times_in_a_zone_across_daylight_saving() {
    let berlin = Some("Europe/Berlin");
    assert_eq!(
        next("0 3 * * *", berlin, "2026-11-26T10:00:00Z"),
        "2026-11-27 03:00 CET"
    );
    // 2027-03-28 02:30 does not exist in Berlin: it fires once, shifted by the jump.
    assert_eq!(
        next("30 2 * * *", berlin, "2027-03-27T12:00:00Z"),
        "2027-03-28 03:30 CEST"
    );
    let cron = Cron::parse("*/30 * * * *", berlin).unwrap();
    let mut t = at("2027-03-28T00:15:00Z");
    let mut seen = Vec::new();
    for _ in 0..4 {
        t = cron.next_after(t).unwrap();
        seen.push(t.to_zoned(cron.tz.clone()).strftime("%H:%M %Z").to_string());
    }
    assert_eq!(
        seen,
        ["01:30 CET", "03:00 CEST", "03:30 CEST", "04:00 CEST"]
    );
    // 2027-10-31 02:30 happens twice in Berlin: it fires the first time only.
    let cron = Cron::parse("30 2 * * *", berlin).unwrap();
    let first = cron.next_after(at("2027-10-30T12:00:00Z")).unwrap();
    assert_eq!(first, at("2027-10-31T00:30:00Z"), "02:30 CEST");
    assert_eq!(
        cron.next_after(first).unwrap(),
        at("2027-11-01T01:30:00Z"),
        "not again at 02:30 CET"
    );
}

#[test]
fn the_last_firing_before_a_time() {
    let cron = Cron::parse("0 * * * *", None).unwrap();
    assert_eq!(
        cron.last_at_or_before(at("2026-11-26T10:30:00Z"), at("2026-11-26T08:30:00Z")),
        Some(at("2026-11-26T10:00:00Z"))
    );
    assert_eq!(
        cron.last_at_or_before(at("2026-11-26T10:00:00Z"), at("2026-11-26T09:30:00Z")),
        Some(at("2026-11-26T10:00:00Z")),
        "at the very time"
    );
    assert_eq!(
        cron.last_at_or_before(at("2026-11-26T10:30:00Z"), at("2026-11-26T10:00:00Z")),
        None,
        "`since` itself is excluded"
    );
}

#[test]
fn bad_schedules_say_what_is_wrong() {
    for (expr, tz, want) in [
        ("0 3 * *", None, "has 4 fields; expected 5"),
        ("60 * * * *", None, "minute: 60 is outside 0-59"),
        ("0 24 * * *", None, "hour: 24 is outside 0-23"),
        ("0 0 0 * *", None, "day of month: 0 is outside 1-31"),
        ("0 0 * 13 *", None, "month: 13 is outside 1-12"),
        ("0 0 * * 8", None, "day of week: 8 is outside 0-7"),
        ("0 0 * * fri-mon", None, "runs backwards"),
        ("*/0 * * * *", None, "step \"0\" is not a positive number"),
        ("x * * * *", None, "\"x\" is not a number"),
        (
            "0 0 * * funday",
            None,
            "\"funday\" is not a number or a name",
        ),
        ("@often", None, "unknown shorthand"),
        ("0 0 30 2 *", None, "never fires"),
        ("0 3 * * *", Some("Mars/Olympus"), "not an IANA time zone"),
    ] {
        let err = Cron::parse(expr, tz).unwrap_err().to_string();
        assert!(err.contains(want), "{expr}: {err} (wanted {want})");
    }
    assert_eq!(
        Cron::parse("0 3 * * *", Some("Europe/Berlin"))
            .unwrap()
            .to_string(),
        "0 3 * * * Europe/Berlin"
    );
}
