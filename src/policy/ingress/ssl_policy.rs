//! ELB predefined security policies and the lowest TLS version each accepts.
//!
//! From the "Security policies" tables of the Application and Network Load Balancer guides
//! (`describe-ssl-policies`), 2025-09 post-quantum policies included. `ELBSecurityPolicy-2015-05`
//! exists for NLBs only and `ELBSecurityPolicy-TLS-1-0-2015-04` is a legacy ALB policy; both are
//! listed so a listener using one is judged on its TLS floor rather than reported as unknown.

use super::ledger::Issue;
use crate::api::{TlsIngressPolicySpec, TlsVersion};
use crate::policy::Rule;
use TlsVersion::{Tls10, Tls11, Tls12, Tls13};

/// Policy name -> minimum TLS version, sorted by name for binary search.
const POLICIES: &[(&str, TlsVersion)] = &[
    ("ELBSecurityPolicy-2015-05", Tls10),
    ("ELBSecurityPolicy-2016-08", Tls10),
    ("ELBSecurityPolicy-FS-1-1-2019-08", Tls11),
    ("ELBSecurityPolicy-FS-1-2-2019-08", Tls12),
    ("ELBSecurityPolicy-FS-1-2-Res-2019-08", Tls12),
    ("ELBSecurityPolicy-FS-1-2-Res-2020-10", Tls12),
    ("ELBSecurityPolicy-FS-2018-06", Tls10),
    ("ELBSecurityPolicy-TLS-1-0-2015-04", Tls10),
    ("ELBSecurityPolicy-TLS-1-1-2017-01", Tls11),
    ("ELBSecurityPolicy-TLS-1-2-2017-01", Tls12),
    ("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", Tls12),
    ("ELBSecurityPolicy-TLS13-1-0-2021-06", Tls10),
    ("ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04", Tls10),
    ("ELBSecurityPolicy-TLS13-1-0-FIPS-PQ-2025-09", Tls10),
    ("ELBSecurityPolicy-TLS13-1-0-PQ-2025-09", Tls10),
    ("ELBSecurityPolicy-TLS13-1-1-2021-06", Tls11),
    ("ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04", Tls11),
    ("ELBSecurityPolicy-TLS13-1-2-2021-06", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext0-RFC9151-FIPS-2023-07", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-RFC9151-FIPS-2023-07", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP1-FIPS-2023-07", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP2-FIPS-2023-07", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP3-FIPS-2023-07", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP4-FIPS-2023-07", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Res-2021-06", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", Tls12),
    ("ELBSecurityPolicy-TLS13-1-3-2021-06", Tls13),
    ("ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04", Tls13),
    ("ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09", Tls13),
    ("ELBSecurityPolicy-TLS13-1-3-PQ-2025-09", Tls13),
    ("ELBSecurityPolicy-TLS13-1-3-RFC9151-FIPS-2023-07", Tls13),
];

/// The lowest TLS version a predefined policy accepts; `None` for a name ELB does not define.
pub fn min_tls_version(policy: &str) -> Option<TlsVersion> {
    POLICIES.binary_search_by(|(name, _)| (*name).cmp(policy)).ok().map(|index| POLICIES[index].1)
}

/// The policy to suggest for a minimum TLS version: the first allowed policy that meets it, or
/// AWS's TLS 1.3 / TLS 1.2 recommendation when no allowlist is set.
pub fn recommended(min_tls: TlsVersion, allowed: &[String]) -> Option<&str> {
    if !allowed.is_empty() {
        return allowed
            .iter()
            .map(String::as_str)
            .find(|policy| min_tls_version(policy).is_some_and(|version| version >= min_tls));
    }
    Some(if min_tls == Tls13 {
        "ELBSecurityPolicy-TLS13-1-3-2021-06"
    } else {
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    })
}

/// Judges the security policy of a TLS listener (`listener` names it, e.g. `HTTPS listener 443`).
/// `defaulted`: the policy is the controller's default, not set by anyone. `fix` turns the
/// policy to use into the remediation.
pub(super) fn judge(
    spec: &TlsIngressPolicySpec,
    policy: &str,
    defaulted: bool,
    listener: &dyn std::fmt::Display,
    fix: &dyn Fn(&str) -> String,
) -> Option<Issue> {
    let allowed = &spec.allowed_ssl_policies;
    let problem = match min_tls_version(policy) {
        None => "is not an ELB predefined security policy, so the TLS versions it accepts cannot be verified"
            .to_string(),
        Some(version) if version < spec.min_tls_version => {
            format!("accepts {version}, below the policy's minimum {}", spec.min_tls_version)
        }
        Some(_) if !allowed.is_empty() && !allowed.iter().any(|name| name == policy) => {
            "is not in the policy's allowedSslPolicies".to_string()
        }
        Some(_) => return None,
    };
    let origin = if defaulted { " (the controller's default, as none is set)" } else { "" };
    let remediation = match recommended(spec.min_tls_version, allowed) {
        Some(recommended) => fix(recommended),
        None => format!(
            "No policy in the TlsIngressPolicy's allowedSslPolicies accepts only {} and above; add one              (e.g. ELBSecurityPolicy-TLS13-1-2-2021-06) and use it",
            spec.min_tls_version
        ),
    };
    Some(Issue::new(
        Rule::Elbv2PredefinedSecurityPolicySslCheck,
        format!("{listener} uses security policy {policy}{origin}, which {problem}"),
        remediation,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(POLICIES.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn minimum_versions() {
        assert_eq!(min_tls_version("ELBSecurityPolicy-2016-08"), Some(Tls10));
        assert_eq!(min_tls_version("ELBSecurityPolicy-TLS-1-1-2017-01"), Some(Tls11));
        assert_eq!(min_tls_version("ELBSecurityPolicy-FS-1-2-Res-2020-10"), Some(Tls12));
        assert_eq!(min_tls_version("ELBSecurityPolicy-TLS13-1-2-2021-06"), Some(Tls12));
        assert_eq!(min_tls_version("ELBSecurityPolicy-TLS13-1-2-Res-2021-06"), Some(Tls12));
        assert_eq!(min_tls_version("ELBSecurityPolicy-TLS13-1-3-2021-06"), Some(Tls13));
        assert_eq!(min_tls_version("ELBSecurityPolicy-TLS13-1-2-PQ-2025-09"), Some(Tls12));
        assert_eq!(min_tls_version("ELBSecurityPolicy-TLS13-1-0-PQ-2025-09"), Some(Tls10));
        assert_eq!(min_tls_version("ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09"), Some(Tls13));
        assert_eq!(min_tls_version("elbsecuritypolicy-2016-08"), None);
        assert_eq!(min_tls_version("MyCustomPolicy"), None);
    }

    fn judged(spec: &TlsIngressPolicySpec, policy: &str) -> Option<String> {
        judge(spec, policy, false, &"HTTPS listener 443", &|p| format!("use {p}")).map(|issue| issue.message)
    }

    #[test]
    fn judging_against_minimum_and_allowlist() {
        let spec = TlsIngressPolicySpec::default();
        assert_eq!(judged(&spec, "ELBSecurityPolicy-TLS13-1-2-2021-06"), None);
        assert_eq!(
            judged(&spec, "ELBSecurityPolicy-2016-08").unwrap(),
            "HTTPS listener 443 uses security policy ELBSecurityPolicy-2016-08, which accepts TLS 1.0, below the \
             policy's minimum TLS 1.2"
        );
        assert!(judged(&spec, "Custom").unwrap().ends_with(
            "is not an ELB predefined security policy, so the TLS \
             versions it accepts cannot be verified"
        ));
        let strict = TlsIngressPolicySpec {
            min_tls_version: Tls13,
            allowed_ssl_policies: vec!["ELBSecurityPolicy-TLS13-1-3-PQ-2025-09".into()],
            ..TlsIngressPolicySpec::default()
        };
        assert!(judged(&strict, "ELBSecurityPolicy-TLS13-1-2-2021-06").unwrap().contains("accepts TLS 1.2"));
        assert!(
            judged(&strict, "ELBSecurityPolicy-TLS13-1-3-2021-06").unwrap().ends_with("allowedSslPolicies")
        );
        assert_eq!(judged(&strict, "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09"), None);
        let remediation = judge(&strict, "ELBSecurityPolicy-2016-08", true, &"l", &|p| format!("use {p}"));
        assert_eq!(remediation.unwrap().remediation, "use ELBSecurityPolicy-TLS13-1-3-PQ-2025-09");
    }

    #[test]
    fn recommendation_respects_the_allowlist() {
        assert_eq!(recommended(Tls12, &[]), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
        assert_eq!(recommended(Tls13, &[]), Some("ELBSecurityPolicy-TLS13-1-3-2021-06"));
        let allowed = vec![
            "ELBSecurityPolicy-2016-08".to_string(),
            "ELBSecurityPolicy-TLS13-1-2-Res-2021-06".to_string(),
        ];
        assert_eq!(recommended(Tls12, &allowed), Some("ELBSecurityPolicy-TLS13-1-2-Res-2021-06"));
        assert_eq!(recommended(Tls13, &allowed), None);
    }
}
