//! Label selectors, evaluated as the apiserver does: the policies' own ([`crate::api::LabelSelector`])
//! and Kubernetes' (IngressClassParams carry one).

use crate::api::{self, SelectorOperator};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use std::collections::BTreeMap;

/// A label selector of either kind.
pub trait Selector {
    /// Whether `labels` meet every requirement.
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool;
}

/// Whether `labels` match `selector`; an absent selector selects everything, and an empty one
/// too (as in the Kubernetes API).
pub fn matches<S: Selector + ?Sized>(
    selector: Option<&S>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(selector) = selector else { return true };
    selector.selects(labels.unwrap_or(&BTreeMap::new()))
}

fn holds(operator: SelectorOperator, value: Option<&String>, values: &[String]) -> bool {
    match operator {
        SelectorOperator::In => value.is_some_and(|v| values.contains(v)),
        SelectorOperator::NotIn => value.is_none_or(|v| !values.contains(v)),
        SelectorOperator::Exists => value.is_some(),
        SelectorOperator::DoesNotExist => value.is_none(),
    }
}

impl Selector for api::LabelSelector {
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(key, value)| labels.get(key) == Some(value))
            && self
                .match_expressions
                .iter()
                .all(|expr| holds(expr.operator, labels.get(&expr.key), &expr.values))
    }
}

impl Selector for meta::LabelSelector {
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        let labels_match =
            self.match_labels.iter().flatten().all(|(key, value)| labels.get(key) == Some(value));
        labels_match
            && self.match_expressions.iter().flatten().all(|expr| {
                let values = expr.values.as_deref().unwrap_or_default();
                let operator = match expr.operator.as_str() {
                    "In" => SelectorOperator::In,
                    "NotIn" => SelectorOperator::NotIn,
                    "Exists" => SelectorOperator::Exists,
                    "DoesNotExist" => SelectorOperator::DoesNotExist,
                    // Controllers refuse a selector with another operator
                    // (`metav1.LabelSelectorAsSelector` fails): it selects nothing.
                    _ => return false,
                };
                holds(operator, labels.get(&expr.key), values)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::from_yaml;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const SELECTOR: &str = "matchLabels: {tier: prod}
matchExpressions:
  - {key: team, operator: In, values: [shop, web]}
  - {key: legacy, operator: DoesNotExist}
  - {key: zone, operator: NotIn, values: [a]}";

    #[test]
    fn absent_and_empty_selectors_select_all() {
        assert!(matches::<api::LabelSelector>(None, None));
        assert!(matches(Some(&api::LabelSelector::default()), Some(&labels(&[("a", "b")]))));
        assert!(matches(Some(&meta::LabelSelector::default()), Some(&labels(&[("a", "b")]))));
    }

    #[test]
    fn match_labels_and_expressions_of_both_kinds() {
        let ours: api::LabelSelector = from_yaml(SELECTOR);
        let theirs: meta::LabelSelector = from_yaml(SELECTOR);
        let selectors: [&dyn Selector; 2] = [&ours, &theirs];
        for selector in selectors {
            let selects = |pairs: &[(&str, &str)]| matches(Some(selector), Some(&labels(pairs)));
            assert!(selects(&[("tier", "prod"), ("team", "shop")]));
            assert!(!selects(&[("tier", "dev"), ("team", "shop")]));
            assert!(!selects(&[("tier", "prod"), ("team", "ops")]));
            assert!(!selects(&[("tier", "prod"), ("team", "web"), ("legacy", "")]));
            assert!(!selects(&[("tier", "prod"), ("team", "web"), ("zone", "a")]));
            assert!(!matches(Some(selector), None));
        }
    }

    #[test]
    fn an_unknown_operator_does_not_parse_in_a_policy_and_selects_nothing_elsewhere() {
        let yaml = "matchExpressions: [{key: a, operator: Gt, values: [\"1\"]}]";
        let error = serde_yaml::from_str::<api::LabelSelector>(yaml).unwrap_err().to_string();
        assert!(error.contains("unknown variant `Gt`"), "{error}");
        let theirs: meta::LabelSelector = from_yaml(yaml);
        assert!(!matches(Some(&theirs), Some(&labels(&[("a", "2")]))));
    }
}
