//! IngressGroups: the ALB Ingresses that share one load balancer, ordered as the controller orders
//! them (`pkg/ingress/group_loader.go`).

use super::AlbDefaults;
use super::annotations::{GROUP_NAME, GROUP_ORDER, annotation, parse_group_order, validate_group_name};
use super::class::{AlbClass, IngressClassification, InventoryIndex, classify};
use super::ledger::Issue;
use crate::policy::{Rule, Verdict};
use k8s_openapi::api::networking::v1::Ingress;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

/// The identity of an ALB: an explicit group name, or the Ingress itself when it names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupId<'a> {
    Explicit(&'a str),
    Implicit { namespace: &'a str, name: &'a str },
}

impl GroupId<'_> {
    pub fn is_explicit(&self) -> bool {
        matches!(self, GroupId::Explicit(_))
    }
}

impl fmt::Display for GroupId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupId::Explicit(name) => f.write_str(name),
            GroupId::Implicit { namespace, name } => write!(f, "{namespace}/{name}"),
        }
    }
}

/// The Ingresses of one ALB, in the controller's order: `group.order` ascending, then
/// `namespace/name`.
#[derive(Debug)]
pub struct AlbGroup<'a> {
    pub id: GroupId<'a>,
    pub members: Vec<AlbMember<'a>>,
}

/// One Ingress of a group.
#[derive(Debug)]
pub struct AlbMember<'a> {
    pub ingress: &'a Ingress,
    /// Position of the Ingress in the slice given to [`alb_groups`].
    pub position: usize,
    pub class: AlbClass<'a>,
    pub order: i64,
    /// Settings the controller rejects (class configuration, group name or order).
    pub(super) problems: Vec<Issue>,
}

impl AlbMember<'_> {
    pub fn namespace(&self) -> &str {
        self.ingress.metadata.namespace.as_deref().unwrap_or("default")
    }

    pub fn name(&self) -> &str {
        self.ingress.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Ingresses sorted into ALBs, and those no ALB is known to serve with their verdicts.
#[derive(Debug, Default)]
pub struct AlbGroups<'a> {
    pub groups: Vec<AlbGroup<'a>>,
    /// Position of the Ingress and its verdict: not applicable (the ALB controller does not
    /// implement it) or not judged.
    pub not_alb: Vec<(usize, Verdict)>,
}

/// Groups the ALB Ingresses among `ingresses`. The group name comes from the IngressClassParams
/// (`spec.group.name`) if set, else from `alb.ingress.kubernetes.io/group.name` (which EKS Auto
/// Mode ignores). An Ingress with an invalid group name, which the controller refuses, is judged
/// on its own (and told why). Auto Mode and the self-managed controller build separate ALBs even
/// for one group name.
pub fn alb_groups<'a>(
    ingresses: &[&'a Ingress],
    index: &InventoryIndex<'a>,
    defaults: &AlbDefaults,
) -> AlbGroups<'a> {
    let mut result = AlbGroups::default();
    let mut group_of: HashMap<(bool, GroupId<'a>), usize> = HashMap::new();
    for (position, ingress) in ingresses.iter().copied().enumerate() {
        if ingress.metadata.deletion_timestamp.is_some() {
            result.not_alb.push((position, Verdict::NotApplicable("the Ingress is being deleted".into())));
            continue;
        }
        let class = match classify(ingress, index, defaults) {
            IngressClassification::Alb(class) => class,
            IngressClassification::NotAlb(verdict) => {
                result.not_alb.push((position, verdict));
                continue;
            }
        };
        let auto_mode = class.auto_mode;
        let (member, id) = member(ingress, position, class);
        let slot = *group_of.entry((auto_mode, id)).or_insert_with(|| {
            result.groups.push(AlbGroup { id, members: Vec::new() });
            result.groups.len() - 1
        });
        result.groups[slot].members.push(member);
    }
    for group in &mut result.groups {
        group.members.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| namespaced_cmp(a, b)));
    }
    result.groups.sort_by(|a, b| a.id.cmp(&b.id));
    result
}

fn member<'a>(
    ingress: &'a Ingress,
    position: usize,
    mut class: AlbClass<'a>,
) -> (AlbMember<'a>, GroupId<'a>) {
    let annotations = ingress.metadata.annotations.as_ref();
    let mut problems: Vec<Issue> = class.problem.take().into_iter().collect();
    let order = match annotation(annotations, GROUP_ORDER).map(parse_group_order) {
        None => 0,
        Some(Ok(order)) => order,
        Some(Err(reason)) => {
            problems.push(Issue::new(
                Rule::AlbIngressAnnotationsValid,
                format!("{GROUP_ORDER}: {reason}; the controller fails to build the group"),
                format!(
                    "Set {GROUP_ORDER} to an integer between -1000 and 1000, e.g. `{GROUP_ORDER}: \"10\"`"
                ),
            ));
            0
        }
    };
    let params_group = class.params.and_then(|params| params.group_name());
    let annotated = annotation(annotations, GROUP_NAME).filter(|_| !class.auto_mode);
    let named = params_group.or(annotated);
    let member = |problems| AlbMember { ingress, position, class, order, problems };
    let implicit = GroupId::Implicit {
        namespace: ingress.metadata.namespace.as_deref().unwrap_or("default"),
        name: ingress.metadata.name.as_deref().unwrap_or_default(),
    };
    match named.map(|name| (name, validate_group_name(name))) {
        None => (member(problems), implicit),
        Some((name, Ok(()))) => (member(problems), GroupId::Explicit(name)),
        Some((_, Err(reason))) => {
            let setting = match params_group {
                Some(_) => "spec.group.name of the IngressClassParams".to_string(),
                None => GROUP_NAME.to_string(),
            };
            problems.push(Issue::new(
                Rule::AlbIngressAnnotationsValid,
                format!("{setting}: {reason}; the controller does not reconcile this Ingress"),
                format!("Use a valid group name in {setting}, e.g. `my-team.shop`"),
            ));
            (member(problems), implicit)
        }
    }
}

/// Orders members by `namespace/name` as one string, as the controller does.
fn namespaced_cmp(a: &AlbMember<'_>, b: &AlbMember<'_>) -> Ordering {
    fn key<'m>(member: &'m AlbMember<'_>) -> impl Iterator<Item = u8> + 'm {
        member.namespace().bytes().chain(std::iter::once(b'/')).chain(member.name().bytes())
    }
    key(a).cmp(key(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ingress::test_support::Manifests;

    fn groups(yaml: &str) -> Vec<(String, Vec<String>)> {
        let manifests = Manifests::parse(yaml);
        let inventory = manifests.inventory();
        let index = InventoryIndex::new(
            inventory.ingress_classes,
            inventory.ingress_class_params,
            inventory.namespaces,
        );
        alb_groups(inventory.ingresses, &index, &AlbDefaults::default())
            .groups
            .iter()
            .map(|g| {
                (
                    g.id.to_string(),
                    g.members.iter().map(|m| format!("{}/{}", m.namespace(), m.name())).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn members_are_ordered_by_group_order_then_name() {
        let found = groups(
            "kind: Ingress
metadata: {name: b, namespace: shop, annotations: {alb.ingress.kubernetes.io/group.name: shared}}
spec: {ingressClassName: alb}
---
kind: Ingress
metadata:
  name: z
  namespace: shop
  annotations: {alb.ingress.kubernetes.io/group.name: shared, alb.ingress.kubernetes.io/group.order: \"-5\"}
spec: {ingressClassName: alb}
---
kind: Ingress
metadata: {name: a, namespace: web, annotations: {alb.ingress.kubernetes.io/group.name: shared}}
spec: {ingressClassName: alb}
---
kind: Ingress
metadata: {name: alone, namespace: web}
spec: {ingressClassName: alb}",
        );
        assert_eq!(
            found,
            [
                ("shared".to_string(), vec!["shop/z".to_string(), "shop/b".into(), "web/a".into()]),
                ("web/alone".to_string(), vec!["web/alone".to_string()]),
            ]
        );
    }

    #[test]
    fn class_params_group_overrides_the_annotation() {
        let found = groups(
            "kind: IngressClass
metadata: {name: shared}
spec:
  controller: ingress.k8s.aws/alb
  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: shared}
---
apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata: {name: shared}
spec: {group: {name: platform}}
---
kind: Ingress
metadata: {name: web, namespace: shop, annotations: {alb.ingress.kubernetes.io/group.name: mine}}
spec: {ingressClassName: shared}",
        );
        assert_eq!(found, [("platform".to_string(), vec!["shop/web".to_string()])]);
    }

    #[test]
    fn invalid_group_settings_are_problems_of_the_member() {
        let manifests = Manifests::parse(
            "kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations: {alb.ingress.kubernetes.io/group.name: Bad_Name, alb.ingress.kubernetes.io/group.order: \"5000\"}
spec: {ingressClassName: alb}",
        );
        let inventory = manifests.inventory();
        let index = InventoryIndex::new(&[], &[], &[]);
        let result = alb_groups(inventory.ingresses, &index, &AlbDefaults::default());
        let member = &result.groups[0].members[0];
        assert_eq!(result.groups[0].id, GroupId::Implicit { namespace: "shop", name: "web" });
        assert_eq!(member.problems.len(), 2);
        assert!(member.problems[0].message.contains("group.order must be within [-1000, 1000]: 5000"));
        assert!(member.problems[1].message.contains("group name `Bad_Name` must consist of lower case"));
    }

    #[test]
    fn namespaced_names_compare_as_one_string() {
        // "a-b/x" < "a/x" as strings ('-' sorts before '/'), unlike comparing namespaces first.
        let found = groups(
            "kind: Ingress
metadata: {name: x, namespace: a, annotations: {alb.ingress.kubernetes.io/group.name: g}}
spec: {ingressClassName: alb}
---
kind: Ingress
metadata: {name: x, namespace: a-b, annotations: {alb.ingress.kubernetes.io/group.name: g}}
spec: {ingressClassName: alb}",
        );
        assert_eq!(found[0].1, ["a-b/x", "a/x"]);
    }

    #[test]
    fn non_alb_and_deleted_ingresses_are_set_aside() {
        let manifests = Manifests::parse(
            "kind: Ingress
metadata: {name: web, namespace: shop}
spec: {ingressClassName: nginx}
---
kind: Ingress
metadata: {name: old, namespace: shop, deletionTimestamp: \"2025-01-01T00:00:00Z\"}
spec: {ingressClassName: alb}",
        );
        let inventory = manifests.inventory();
        let index = InventoryIndex::new(&[], &[], &[]);
        let result = alb_groups(inventory.ingresses, &index, &AlbDefaults::default());
        assert!(result.groups.is_empty());
        assert_eq!(result.not_alb.iter().map(|(position, _)| *position).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(result.not_alb[1].1, Verdict::NotApplicable("the Ingress is being deleted".into()));
    }
}
