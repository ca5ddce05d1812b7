//! What the API server and the controllers require of objects, as plain functions: the
//! annotation size limit, the scheduler's fit, the DaemonSet tolerations, template hashes.

use std::collections::BTreeMap;

use cluster_api::{Error, Node, Pod, Result, Toleration};

use crate::changes::ChangeType;

/// A write's change type: `Modified` if the object existed.
pub(super) fn added_or_modified(existed: bool) -> ChangeType {
    if existed {
        ChangeType::Modified
    } else {
        ChangeType::Added
    }
}

/// Whether the scheduler may place `pod` on `node`, judging the taints the node lifecycle
/// controller derives from its state (`TaintNodesByCondition`).
pub(super) fn fits(node: &Node, pod: &Pod) -> bool {
    (node.ready || pod.tolerates(cluster_api::NOT_READY_TAINT, "", "NoSchedule"))
        && (!node.unschedulable || pod.tolerates_cordon())
}

/// The tolerations the DaemonSet controller adds to every pod it creates
/// (`AddOrUpdateDaemonPodTolerations`), so that its pods run on cordoned and troubled nodes.
pub(super) fn daemonset_tolerations() -> Vec<Toleration> {
    [
        (cluster_api::NOT_READY_TAINT, "NoExecute"),
        (cluster_api::UNREACHABLE_TAINT, "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        (cluster_api::UNSCHEDULABLE_TAINT, "NoSchedule"),
    ]
    .into_iter()
    .map(|(key, effect)| Toleration::exists(key, effect))
    .collect()
}

/// The most bytes an object's annotations may hold, keys and values together
/// (apimachinery's `TotalAnnotationSizeLimitB`).
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// What the API server checks of an object's annotations: at most [`ANNOTATIONS_LIMIT`]
/// bytes in all, or the write is refused (422 Invalid) with its words.
/// `kind` is the object's kind, qualified by its group outside the core group
/// (`Lease.coordination.k8s.io`), as the API server names it in a validation error.
pub(crate) fn validate_annotations(
    kind: &str,
    name: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<()> {
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > ANNOTATIONS_LIMIT {
        return Err(Error::invalid(format!(
            "{kind} \"{name}\" is invalid: metadata.annotations: Too long: may not be more \
             than {ANNOTATIONS_LIMIT} bytes"
        )));
    }
    Ok(())
}

/// The API server's refusal of a core/v1 Event with an `eventTime` whose note (`message`)
/// passes [`cluster_api::NOTE_LIMIT`] bytes (its words, value left out, as
/// kube-apiserver v1.37 writes them).
pub(crate) fn note_too_long(name: &str) -> Error {
    Error::invalid(format!(
        "Event \"{name}\" is invalid: message: Invalid value: \"\": can have at most {} characters",
        cluster_api::NOTE_LIMIT
    ))
}

/// A stable short hash of a pod template, like `pod-template-hash`.
pub(crate) fn template_hash(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> String {
    let h = fnv1a(
        labels
            .iter()
            .chain(annotations.iter())
            .flat_map(|(k, v)| k.bytes().chain([0]).chain(v.bytes()).chain([0])),
    );
    format!("{:010x}", h & 0xff_ffff_ffff)
}

/// 64-bit FNV-1a: a stable hash for names and uids the simulation derives.
pub(crate) fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
