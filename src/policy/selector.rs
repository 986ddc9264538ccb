//! Kubernetes label selectors, evaluated as the apiserver does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// Whether `labels` match `selector`; an absent selector selects everything, and an empty one
/// too (as in the Kubernetes API).
pub fn matches(selector: Option<&LabelSelector>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(selector) = selector else { return true };
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let labels_match =
        selector.match_labels.iter().flatten().all(|(key, value)| labels.get(key) == Some(value));
    labels_match
        && selector.match_expressions.iter().flatten().all(|expr| {
            let value = labels.get(&expr.key);
            let values = expr.values.as_deref().unwrap_or_default();
            match expr.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                // The apiserver rejects other operators; select nothing rather than everything.
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn absent_and_empty_selectors_select_all() {
        assert!(matches(None, None));
        assert!(matches(Some(&LabelSelector::default()), Some(&labels(&[("a", "b")]))));
    }

    #[test]
    fn match_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("tier", "prod")])),
            match_expressions: Some(vec![
                expr("team", "In", &["shop", "web"]),
                expr("legacy", "DoesNotExist", &[]),
                expr("zone", "NotIn", &["a"]),
            ]),
        };
        assert!(matches(Some(&selector), Some(&labels(&[("tier", "prod"), ("team", "shop")]))));
        assert!(!matches(Some(&selector), Some(&labels(&[("tier", "dev"), ("team", "shop")]))));
        assert!(!matches(Some(&selector), Some(&labels(&[("tier", "prod"), ("team", "ops")]))));
        assert!(!matches(
            Some(&selector),
            Some(&labels(&[("tier", "prod"), ("team", "web"), ("legacy", "")]))
        ));
        assert!(!matches(
            Some(&selector),
            Some(&labels(&[("tier", "prod"), ("team", "web"), ("zone", "a")]))
        ));
        assert!(!matches(Some(&selector), None));
    }

    #[test]
    fn unknown_operator_selects_nothing() {
        let selector =
            LabelSelector { match_labels: None, match_expressions: Some(vec![expr("a", "Gt", &["1"])]) };
        assert!(!matches(Some(&selector), Some(&labels(&[("a", "2")]))));
    }
}
