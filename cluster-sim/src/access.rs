//! Who may do what on the simulated cluster: users with bearer tokens, and RBAC rules, as a
//! scenario gives them. The API endpoint authenticates and authorises every request with
//! them, and answers TokenReviews and (Self)SubjectAccessReviews from them.

use serde::Deserialize;

/// The group whose members may do everything, as on a real cluster.
pub const ADMIN_GROUP: &str = "system:masters";

/// The API server's own audience: a token made for it authenticates requests to the API,
/// and is what a TokenReview that names no audiences asks about.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc";

/// A user of the simulated cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    /// The user name, e.g. `alice` or `system:serviceaccount:restart-manager:restart-manager`.
    pub name: String,
    /// The bearer token that authenticates as this user.
    pub token: String,
    /// Groups (besides `system:authenticated`, which every user is in).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The user's uid, as a TokenReview reports it; empty for none.
    #[serde(default)]
    pub uid: String,
    /// The audiences the token was issued for (`kubectl create token --audience`); empty:
    /// the API server's own ([`API_AUDIENCE`]). A token good only for other audiences does
    /// not authenticate requests to the API, as on a real API server.
    #[serde(default)]
    pub audiences: Vec<String>,
}

impl UserSpec {
    /// A user with a token for the API server, in no groups of their own.
    pub fn new(name: impl Into<String>, token: impl Into<String>) -> Self {
        UserSpec {
            name: name.into(),
            token: token.into(),
            groups: Vec::new(),
            uid: String::new(),
            audiences: Vec::new(),
        }
    }

    /// ServiceAccount `name` in `namespace`, as a real TokenReview reports one of its tokens:
    /// `system:serviceaccount:<namespace>:<name>`, in the groups `system:serviceaccounts`
    /// and `system:serviceaccounts:<namespace>`, with a uid (the real one is the
    /// ServiceAccount object's; here one made from its name).
    pub fn service_account(namespace: &str, name: &str, token: impl Into<String>) -> Self {
        UserSpec {
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
            ],
            uid: format!("serviceaccount-{namespace}-{name}"),
            ..UserSpec::new(format!("system:serviceaccount:{namespace}:{name}"), token)
        }
    }

    /// The token is good for `audiences` instead of the API server.
    pub fn audiences(mut self, audiences: &[&str]) -> Self {
        self.audiences = audiences.iter().map(|a| a.to_string()).collect();
        self
    }
}

/// Who a token belongs to, as authentication found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user name.
    pub user: String,
    /// The uid; empty for none.
    pub uid: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
    /// Of the audiences asked about, those the token is good for.
    pub audiences: Vec<String>,
}

/// What some subjects may do: the rules of a Role or ClusterRole, bound to users and groups.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessRule {
    /// Who: user names, and groups as `group:NAME`.
    pub subjects: Vec<String>,
    /// API groups (`""` for core; `*` for all).
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources, with `resource/subresource` for a subresource (`*` for all); a
    /// non-resource URL as its path (`/metrics`, RBAC's `nonResourceURLs`).
    pub resources: Vec<String>,
    /// Verbs (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, or custom ones
    /// such as `restart`; `*` for all).
    pub verbs: Vec<String>,
    /// Only in these namespaces (a RoleBinding); empty for everywhere (a ClusterRoleBinding).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Only these object names; empty for all.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// One thing to do, as an access review or a request states it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `create`, ..., or a custom verb such as `restart`; matched against an
    /// [`AccessRule`]'s `verbs`.
    pub verb: String,
    /// The API group (`""` for core).
    pub group: String,
    /// The resource's plural name (`pods`, `deployments`), without the subresource; for a
    /// non-resource request, the URL path (`/metrics`).
    pub resource: String,
    /// The subresource, if any.
    pub subresource: String,
    /// The namespace, empty for cluster-scoped objects or all namespaces.
    pub namespace: String,
    /// The object's name, if one.
    pub name: String,
}

/// Users and rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub(crate) users: Vec<UserSpec>,
    pub(crate) rules: Vec<AccessRule>,
}

fn any(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

// === impl Access ===

impl Access {
    /// The user a bearer token belongs to, if the token is good for one of `audiences`
    /// (none: the API server's own), as a TokenReview judges it.
    pub fn authenticate(&self, token: &str, audiences: &[String]) -> Option<Authenticated> {
        let user = self.users.iter().find(|u| u.token == token)?;
        let api = [API_AUDIENCE.to_string()];
        let wanted = if audiences.is_empty() {
            &api[..]
        } else {
            audiences
        };
        let has = if user.audiences.is_empty() {
            &api[..]
        } else {
            &user.audiences[..]
        };
        let audiences: Vec<String> = wanted.iter().filter(|a| has.contains(a)).cloned().collect();
        if audiences.is_empty() {
            return None;
        }
        let mut groups = user.groups.clone();
        groups.push("system:authenticated".into());
        Some(Authenticated {
            user: user.name.clone(),
            uid: user.uid.clone(),
            groups,
            audiences,
        })
    }

    /// Whether `user` (in `groups`) may do `what`; the reason, for an access review.
    pub fn allows(&self, user: &str, groups: &[String], what: &Attributes) -> (bool, String) {
        if groups.iter().any(|g| g == ADMIN_GROUP) {
            return (true, format!("{ADMIN_GROUP} may do everything"));
        }
        let resource = if what.subresource.is_empty() {
            what.resource.clone()
        } else {
            format!("{}/{}", what.resource, what.subresource)
        };
        let is_subject = |rule: &AccessRule| {
            rule.subjects
                .iter()
                .any(|s| match s.strip_prefix("group:") {
                    Some(g) => groups.iter().any(|mine| mine == g),
                    None => s == user,
                })
        };
        let found = self.rules.iter().position(|rule| {
            is_subject(rule)
                && (rule.api_groups.is_empty() && what.group.is_empty()
                    || any(&rule.api_groups, &what.group))
                && any(&rule.resources, &resource)
                && any(&rule.verbs, &what.verb)
                && (rule.namespaces.is_empty()
                    || (!what.namespace.is_empty() && any(&rule.namespaces, &what.namespace)))
                && (rule.resource_names.is_empty()
                    || (!what.name.is_empty() && any(&rule.resource_names, &what.name)))
        });
        match found {
            Some(i) => (
                true,
                format!("allowed by the scenario's access rule {}", i + 1),
            ),
            None => (false, String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(subjects: &[&str], groups: &[&str], resources: &[&str], verbs: &[&str]) -> AccessRule {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        AccessRule {
            subjects: s(subjects),
            api_groups: s(groups),
            resources: s(resources),
            verbs: s(verbs),
            namespaces: Vec::new(),
            resource_names: Vec::new(),
        }
    }

    /// What kube-apiserver v1.37 answered for `kubectl create token alice -n shop --audience
    /// restart-manager` (the uid and `extra` aside).
    #[test]
    fn a_service_account_is_reviewed_as_the_api_server_reviews_it() {
        let access = Access {
            users: vec![
                UserSpec::service_account("shop", "alice", "t-alice")
                    .audiences(&["restart-manager"]),
            ],
            rules: Vec::new(),
        };
        let who = access
            .authenticate("t-alice", &["restart-manager".to_string()])
            .unwrap();
        assert_eq!(who.user, "system:serviceaccount:shop:alice");
        assert_eq!(
            who.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:shop",
                "system:authenticated"
            ]
        );
        assert!(!who.uid.is_empty());
        assert_eq!(who.audiences, ["restart-manager"]);
    }

    #[test]
    fn rules_match_like_rbac() {
        let mut restart = rule(
            &["group:shop-team"],
            &["apps"],
            &["deployments"],
            &["restart"],
        );
        restart.namespaces = vec!["shop".into()];
        restart.resource_names = vec!["web".into()];
        let access = Access {
            users: vec![
                UserSpec {
                    groups: vec!["shop-team".into()],
                    ..UserSpec::new("alice", "t-alice")
                },
                UserSpec::new("carol", "t-carol").audiences(&["restart-manager"]),
            ],
            rules: vec![
                restart,
                rule(&["bob"], &[""], &["pods/eviction"], &["create"]),
            ],
        };
        let alice = access.authenticate("t-alice", &[]).unwrap();
        assert_eq!(alice.audiences, [API_AUDIENCE]);
        let (user, groups) = (alice.user, alice.groups);
        assert!(access.authenticate("nope", &[]).is_none());
        // Audiences: a token made for restart-manager is no token for the API server, and a
        // token for the API server is no token for restart-manager.
        let ours = ["restart-manager".to_string()];
        assert!(access.authenticate("t-carol", &[]).is_none());
        assert_eq!(
            access.authenticate("t-carol", &ours).unwrap().audiences,
            ours
        );
        assert!(access.authenticate("t-alice", &ours).is_none());
        let what = |verb: &str, group: &str, resource: &str, ns: &str, name: &str| Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        };
        assert!(
            access
                .allows(
                    &user,
                    &groups,
                    &what("restart", "apps", "deployments", "shop", "web")
                )
                .0
        );
        assert!(
            !access
                .allows(
                    &user,
                    &groups,
                    &what("restart", "apps", "deployments", "shop", "db")
                )
                .0
        );
        assert!(
            !access
                .allows(
                    &user,
                    &groups,
                    &what("restart", "apps", "deployments", "other", "web")
                )
                .0
        );
        assert!(
            !access
                .allows(
                    &user,
                    &groups,
                    &what("patch", "apps", "deployments", "shop", "web")
                )
                .0
        );
        let mut evict = what("create", "", "pods", "shop", "x");
        evict.subresource = "eviction".into();
        assert!(access.allows("bob", &[], &evict).0);
        assert!(
            !access
                .allows("bob", &[], &what("create", "", "pods", "shop", "x"))
                .0
        );
        assert!(
            access
                .allows(
                    "root",
                    &[ADMIN_GROUP.into()],
                    &what("delete", "", "nodes", "", "n1")
                )
                .0
        );
    }
}
