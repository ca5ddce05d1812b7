//! Access checks and reviews: the start-up permission check (SelfSubjectAccessReview), and
//! the TokenReviews and SubjectAccessReviews the server makes for its own callers, on a
//! budget of their own.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_api::{Error, Result};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview,
    SelfSubjectAccessReviewSpec, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::{KubeCluster, Permission};

/// Something to do to one namespaced object, for [`KubeCluster::subject_may`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<'a> {
    /// The verb, e.g. `restart`.
    pub verb: &'a str,
    /// API group, e.g. `apps`.
    pub group: &'a str,
    /// Resource, e.g. `deployments`; or a non-resource URL, starting with `/` (`/metrics`),
    /// for which `group`, `namespace` and `name` are not asked.
    pub resource: &'a str,
    /// The object's namespace (`resourceAttributes.namespace`); empty: a cluster-scoped
    /// object, or all namespaces.
    pub namespace: &'a str,
    /// Object name.
    pub name: &'a str,
}

/// A user as a TokenReview describes them, for [`KubeCluster::subject_may`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// A unique id; empty when the authenticator gives none.
    pub uid: String,
    /// `status.user.groups` of the TokenReview, named again in every SubjectAccessReview.
    pub groups: Vec<String>,
    /// What else the authenticator knows (a service account token's pod and node, scopes).
    pub extra: BTreeMap<String, Vec<String>>,
}

// === impl KubeCluster: reviews ===

impl KubeCluster {
    /// Which of `wanted` this client's identity is not allowed, asked with
    /// SelfSubjectAccessReviews.
    pub async fn missing_permissions(&self, wanted: &[Permission]) -> Result<Vec<Permission>> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client());
        let mut missing = Vec::new();
        for p in wanted {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(attributes(
                        p.verb,
                        p.group,
                        p.resource,
                        p.namespace.clone(),
                        p.name.clone(),
                    )),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = self
                .call(api.create(&PostParams::default(), &review))
                .await?;
            if !answer.status.is_some_and(|s| s.allowed) {
                missing.push(p.clone());
            }
        }
        Ok(missing)
    }

    /// Who a bearer token belongs to (TokenReview): `None` if the API server does not
    /// recognise it, or recognises it only for other audiences. With `audiences`, the token
    /// must have been issued for at least one of them (`kubectl create token --audience`);
    /// with none, the API server's own audiences count. Reviews go through their own
    /// budget ([`KubeOptions::review_qps`](crate::KubeOptions::review_qps)).
    pub async fn review_token(&self, token: &str, audiences: &[String]) -> Result<Option<User>> {
        let api: Api<TokenReview> = Api::all(self.client());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
            },
            ..Default::default()
        };
        let answer = self
            .review(api.create(&PostParams::default(), &review))
            .await?;
        let Some(status) = answer.status.filter(|s| s.authenticated == Some(true)) else {
            return Ok(None);
        };
        // The API server answers with the audiences the token is good for among those asked;
        // an authenticator that ignores audiences must not let a token through for ours.
        if !audiences.is_empty()
            && !status
                .audiences
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|a| audiences.contains(a))
        {
            return Ok(None);
        }
        let user = status.user.unwrap_or_default();
        Ok(Some(User {
            name: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default().into_iter().collect(),
        }))
    }

    /// Whether a user may do something to one object (SubjectAccessReview), e.g. the custom
    /// verb `restart` on `deployments.apps` `web` in `shop`.
    ///
    /// The review names the user as the TokenReview described them (name, uid, groups and
    /// extra), so that an authoriser keying on uid or on extra (scopes, a node's name) judges
    /// the same person the API server would. It goes through the reviews' own budget.
    pub async fn subject_may(&self, user: &User, access: &Access<'_>) -> Result<bool> {
        let api: Api<SubjectAccessReview> = Api::all(self.client());
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
                groups: Some(user.groups.clone()),
                extra: (!user.extra.is_empty()).then(|| {
                    user.extra
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }),
                resource_attributes: (!access.resource.starts_with('/')).then(|| {
                    attributes(
                        access.verb,
                        access.group,
                        access.resource,
                        Some(access.namespace.to_string()),
                        Some(access.name.to_string()),
                    )
                }),
                non_resource_attributes: access.resource.starts_with('/').then(|| {
                    NonResourceAttributes {
                        path: Some(access.resource.to_string()),
                        verb: Some(access.verb.to_string()),
                    }
                }),
            },
            ..Default::default()
        };
        let answer = self
            .review(api.create(&PostParams::default(), &review))
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// An access review: as [`call`](Self::call), but on the reviews' own budget, and
    /// refused at once when no turn comes within [`KubeOptions::review_wait`].
    async fn review<T>(&self, request: impl Future<Output = Result<T, kube::Error>>) -> Result<T> {
        let now = tokio::time::Instant::now();
        let limiter = &self.inner.reviews;
        if let Err(late) = limiter
            .acquire_before(Some(now + self.inner.options.review_wait))
            .await
        {
            return Err(Error::TooManyRequests {
                message: "too many access reviews at once; try again shortly".into(),
                retry_after: Some(late.turn.duration_since(now).max(Duration::from_secs(1))),
            });
        }
        self.answer(limiter, now + self.inner.options.timeout, request)
            .await
    }
}

fn attributes(
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<String>,
    name: Option<String>,
) -> ResourceAttributes {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), Some(s.to_string())),
        None => (resource.to_string(), None),
    };
    ResourceAttributes {
        verb: Some(verb.to_string()),
        group: Some(group.to_string()),
        resource: Some(resource),
        subresource,
        namespace,
        name,
        ..Default::default()
    }
}
