use super::*;

#[test]
fn durations_read_like_people_write_them() {
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("PT2M").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
    assert!(
        parse_duration("soon")
            .unwrap_err()
            .to_string()
            .contains("\"soon\"")
    );
}

#[test]
fn unknown_groups_follow_the_policy() {
    let mut config = FleetLockConfig::default();
    assert!(config.group("default").is_some());
    assert!(config.group("workers").is_none());
    config.unknown_groups = UnknownGroups::Allow;
    assert_eq!(config.group("workers"), Some(&config.group_defaults));
    assert_eq!(config.max_unknown_groups, DEFAULT_MAX_UNKNOWN_GROUPS);
    let config: FleetLockConfig =
        serde_saphyr::from_str("unknownGroups: allow\nmaxUnknownGroups: 4\n").unwrap();
    assert_eq!(config.max_unknown_groups, 4);
}

#[test]
fn validation_names_the_field() {
    let mut config = FleetLockConfig::default();
    config
        .groups
        .insert("bad_name".into(), GroupConfig::default());
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("bad_name")
    );
    let mut config = FleetLockConfig::default();
    config.groups.get_mut("default").unwrap().slots = 0;
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("paused")
    );
}

#[test]
fn budget_retry_reads_from_the_file_and_must_be_positive() {
    let config: FleetLockConfig = serde_saphyr::from_str("drain:\n  budgetRetry: 10s\n").unwrap();
    config.validate().unwrap();
    assert_eq!(config.drain.budget_retry, Duration::from_secs(10));
    assert_eq!(
        FleetLockConfig::default().drain.budget_retry,
        Duration::from_secs(5)
    );
    let zero: FleetLockConfig = serde_saphyr::from_str("drain:\n  budgetRetry: 0s\n").unwrap();
    let error = zero.validate().unwrap_err().to_string();
    assert!(error.contains("drain.budgetRetry"), "{error}");
}

#[test]
fn alert_gates_read_from_the_file_and_need_a_source() {
    let yaml = "alerts:\n  url: http://prometheus.monitoring:9090\n  onUnreachable: allow\n\
                groups:\n  default:\n    healthGates:\n      alerts: [severity=critical]\n";
    let config: FleetLockConfig = serde_saphyr::from_str(yaml).unwrap();
    config.validate().unwrap();
    let alerts = config.alerts.as_ref().unwrap();
    assert_eq!(alerts.api, AlertsApi::Prometheus);
    assert_eq!(alerts.interval, Duration::from_secs(15));
    assert_eq!(alerts.on_unreachable, OnUnreachable::Allow);
    assert_eq!(
        config.groups["default"].health_gates.alerts[0].to_string(),
        "severity=critical"
    );

    let mut unsourced = config.clone();
    unsourced.alerts = None;
    let error = unsourced.validate().unwrap_err().to_string();
    assert!(
        error.contains("healthGates.alerts needs fleetlock.alerts"),
        "{error}"
    );
    let mut no_scheme = config;
    no_scheme.alerts.as_mut().unwrap().url = "prometheus:9090".into();
    let error = no_scheme.validate().unwrap_err().to_string();
    assert!(error.contains("http://"), "{error}");
}

#[test]
fn a_rate_reads_from_the_file_and_is_off_by_default() {
    assert_eq!(GroupConfig::default().rate, None);
    let config: FleetLockConfig =
        serde_saphyr::from_str("groups:\n  workers:\n    rate: {reboots: 3, per: 1h}\n").unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.groups["workers"].rate,
        Some(RateLimit {
            reboots: 3,
            per: Duration::from_secs(3600)
        })
    );
}

#[test]
fn a_bad_rate_is_refused_naming_the_group_and_the_field() {
    for (rate, field) in [
        ("{reboots: 0, per: 1h}", "rate.reboots"),
        ("{reboots: 3, per: 0s}", "rate.per"),
        ("{reboots: 100000, per: 1h}", "rate.reboots"),
    ] {
        let yaml = format!("groups:\n  workers:\n    rate: {rate}\n");
        let config: FleetLockConfig = serde_saphyr::from_str(&yaml).unwrap();
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("\"workers\""), "{message}");
        assert!(message.contains(field), "{message}");
    }
    let yaml = "groupDefaults:\n  rate: {reboots: 0, per: 1h}\n";
    let config: FleetLockConfig = serde_saphyr::from_str(yaml).unwrap();
    let message = config.validate().unwrap_err().to_string();
    assert!(message.contains("groupDefaults"), "{message}");
    let missing: Result<FleetLockConfig, _> =
        serde_saphyr::from_str("groups:\n  workers:\n    rate: {reboots: 3}\n");
    assert!(missing.is_err());
}
