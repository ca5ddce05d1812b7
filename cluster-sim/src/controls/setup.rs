//! Users and access rules, ConfigMaps and Secrets, and PodDisruptionBudgets to set up and
//! change.

use cluster_api::{ConfigKind, ConfigObject};

use crate::access;
use crate::{Budget, BudgetStatus, SimCluster};

impl SimCluster {
    // --- access ---

    /// Adds a user who authenticates to the API endpoint with a bearer token.
    pub fn add_user(&self, user: access::UserSpec) {
        self.with(|st| st.access.users.push(user));
    }

    /// Adds an RBAC rule the API endpoint authorises requests and access reviews by.
    pub fn add_access_rule(&self, rule: access::AccessRule) {
        self.with(|st| st.access.rules.push(rule));
    }

    /// Removes the user with this name (their token stops working); whether there was one.
    pub fn remove_user(&self, name: &str) -> bool {
        self.with(|st| {
            let before = st.access.users.len();
            st.access.users.retain(|u| u.name != name);
            st.access.users.len() != before
        })
    }

    /// Removes every RBAC rule that names `subject` (a user, or `group:NAME`), as deleting
    /// its bindings would; how many went.
    pub fn remove_access_rules(&self, subject: &str) -> usize {
        self.with(|st| {
            let before = st.access.rules.len();
            st.access
                .rules
                .retain(|r| !r.subjects.iter().any(|s| s == subject));
            before - st.access.rules.len()
        })
    }

    /// The users and rules in force.
    pub fn access(&self) -> access::Access {
        self.with(|st| st.access.clone())
    }

    // --- ConfigMaps, Secrets and budgets ---

    /// Creates or replaces a ConfigMap with this data; watches see its new digest.
    pub fn put_config_map(
        &self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> ConfigObject {
        let data = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.with(|st| st.put_config(ConfigKind::ConfigMap, namespace, name, data))
    }

    /// Creates or replaces a Secret with this data (as its decoded values).
    pub fn put_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) -> ConfigObject {
        let data = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.with(|st| st.put_config(ConfigKind::Secret, namespace, name, data))
    }

    /// Deletes a ConfigMap or Secret; whether it existed.
    pub fn delete_config(&self, kind: ConfigKind, namespace: &str, name: &str) -> bool {
        self.with(|st| st.delete_config(kind, namespace, name))
    }

    /// Adds (or replaces) a PodDisruptionBudget.
    pub fn add_budget(&self, budget: Budget) {
        self.with(|st| {
            st.budgets
                .insert((budget.namespace.clone(), budget.name.clone()), budget);
        });
    }

    /// Removes a PodDisruptionBudget.
    pub fn remove_budget(&self, namespace: &str, name: &str) -> Option<Budget> {
        self.with(|st| {
            st.budgets
                .remove(&(namespace.to_string(), name.to_string()))
        })
    }

    /// What a budget allows right now, as its `status` would say.
    pub fn budget_status(&self, namespace: &str, name: &str) -> Option<BudgetStatus> {
        self.with(|st| {
            let budget = st.budgets.get(&(namespace.to_string(), name.to_string()))?;
            Some(st.budget_status(budget))
        })
    }
}
