//! The Deployment every manifest set ships: its replicas and their spread, its pod's security
//! and probes, the budget, the network policy, the FleetLock port and the mounted configuration.

use super::*;

pub(crate) fn check_deployment(o: &Objects) {
    check_deployment_with_egress(o, &[]);
}

/// [`check_deployment`] for an overlay that opens more egress ports (`port/protocol`).
pub(crate) fn check_deployment_with_egress(o: &Objects, extra_egress: &[&str]) {
    let spec = o.deployments[0].spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2), "two replicas");
    let pod = pod_spec(o);
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    let terms = anti
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(
        terms[0].topology_key, "kubernetes.io/hostname",
        "one replica per node"
    );
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    let c = &pod.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.read_only_root_filesystem, sc.allow_privilege_escalation),
        (Some(true), Some(false))
    );
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_string()][..])
    );
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(path(&c.readiness_probe), "/readyz");
    // Asked on the FleetLock listener: FleetLock's readiness, not the restart service's.
    assert_eq!(
        c.readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("fleetlock".into())
    );
    assert_eq!(path(&c.liveness_probe), "/healthz");
    let env: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
    for name in ["POD_NAME", "POD_NAMESPACE", "CONFIG_FILE_PATH", "AUTH_MODE"] {
        assert!(env.contains(&name), "{name} is set");
    }
    // The budget and the service select these pods.
    let labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    let selects = |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
        s.as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    };
    assert!(selects(&o.budgets[0].spec.as_ref().unwrap().selector));
    assert_eq!(
        o.budgets[0]
            .spec
            .as_ref()
            .unwrap()
            .min_available
            .as_ref()
            .map(|m| format!("{m:?}")),
        Some("Int(1)".into())
    );
    assert!(
        o.services[0]
            .spec
            .as_ref()
            .unwrap()
            .selector
            .as_ref()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    );
    let np = o.policies[0].spec.as_ref().unwrap();
    let rule = |port: &str| {
        np.ingress
            .iter()
            .flatten()
            .find(|r| {
                r.ports
                    .iter()
                    .flatten()
                    .any(|p| format!("{:?}", p.port) == format!("Some(Int({port}))"))
            })
            .unwrap_or_else(|| panic!("no ingress rule for {port}"))
    };
    assert!(
        rule("8080").from.is_none(),
        "the page and API: anyone in the cluster"
    );
    let fleetlock_from = rule("8081")
        .from
        .as_ref()
        .expect("FleetLock is admitted from some networks only");
    assert!(
        !fleetlock_from.is_empty()
            && fleetlock_from
                .iter()
                .all(|peer| peer.ip_block.is_some() && peer.pod_selector.is_none()),
        "FleetLock: node networks only, never pods by selector"
    );
    // Out: only the API server's ports (no DNS, nothing else), plus what an overlay adds.
    let egress_ports: BTreeSet<String> = np
        .egress
        .iter()
        .flatten()
        .flat_map(|r| r.ports.iter().flatten())
        .map(|p| format!("{:?}/{:?}", p.port, p.protocol))
        .collect();
    assert_eq!(
        egress_ports,
        ["443/TCP", "6443/TCP"]
            .iter()
            .chain(extra_egress)
            .map(|p| {
                let (port, protocol) = p.split_once('/').unwrap();
                format!("Some(Int({port}))/Some({protocol:?})")
            })
            .collect::<BTreeSet<String>>()
    );
    // FleetLock has its own container and Service port, and the server is told to use it.
    let container = &pod_spec(o).containers[0];
    assert!(
        container
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some("fleetlock") && p.container_port == 8081)
    );
    assert!(
        container
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "FLEETLOCK_LISTEN_ADDRESS" && e.value.as_deref() == Some(":8081"))
    );
    let service_ports = o.services[0].spec.as_ref().unwrap().ports.as_ref().unwrap();
    assert!(
        service_ports
            .iter()
            .any(|p| p.name.as_deref() == Some("fleetlock") && p.port == 8081)
    );
    // The mounted configuration is one the server accepts.
    let config = config(o);
    assert!(
        config.fleetlock.verify_caller,
        "the shipped config verifies FleetLock callers"
    );
}
