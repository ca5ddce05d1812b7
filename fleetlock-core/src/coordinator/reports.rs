//! What this replica has already reported of each holder, so that a report is made once per
//! holding rather than at every maintenance pass.

use std::collections::HashSet;

use parking_lot::Mutex;

#[derive(Default)]
pub(super) struct Reports {
    /// Holders (by node) reported stuck.
    stuck: Mutex<HashSet<String>>,
    /// Holders (by node) warned about with `RebootNotObserved`.
    unrebooted: Mutex<HashSet<String>>,
}

impl Reports {
    /// Whether `node` is reported stuck for the first time (it is noted as reported).
    pub(super) fn first_stuck(&self, node: &str) -> bool {
        self.stuck.lock().insert(node.to_string())
    }

    /// Whether `node` is warned about as not rebooted for the first time.
    pub(super) fn first_unrebooted(&self, node: &str) -> bool {
        self.unrebooted.lock().insert(node.to_string())
    }

    /// The node gave its slot back: its next holding is reported afresh.
    pub(super) fn forget(&self, node: &str) {
        self.stuck.lock().remove(node);
        self.unrebooted.lock().remove(node);
    }
}
