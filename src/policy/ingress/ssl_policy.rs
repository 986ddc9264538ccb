//! ELB predefined security policies, what each accepts, and the judging of a listener's policy.
//!
//! The policies are listed once, in `ssl_policies.txt` (name, TLS protocols, post-quantum key
//! exchange, FIPS), read when first needed. A name not in it is reported, never passed: ELB
//! accepts only predefined policies on ALBs, and a custom one's protocols cannot be known here.

use super::ledger::Issue;
use crate::api::{TlsIngressPolicySpec, TlsVersion};
use crate::policy::Rule;
use TlsVersion::{Tls10, Tls11, Tls12, Tls13};
use std::sync::LazyLock;

/// One predefined security policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SslPolicy {
    pub name: &'static str,
    /// The lowest TLS version it accepts.
    pub min_tls: TlsVersion,
    /// Offers hybrid post-quantum (ML-KEM) key exchange: the `-PQ-` policies.
    pub post_quantum: bool,
    /// Uses FIPS 140 validated cryptographic modules: the `-FIPS-` policies.
    pub fips: bool,
}

const TABLE: &str = include_str!("ssl_policies.txt");

/// The table, sorted by name for binary search. The checked-in file parses (a test proves it),
/// so a failure here is a broken build, not bad input.
static POLICIES: LazyLock<Vec<SslPolicy>> =
    LazyLock::new(|| parse_table(TABLE).unwrap_or_else(|err| panic!("ssl_policies.txt: {err}")));

fn parse_table(text: &'static str) -> Result<Vec<SslPolicy>, String> {
    let mut policies = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        policies.push(parse_line(line).map_err(|err| format!("line {}: {err}", index + 1))?);
    }
    policies.sort_by_key(|policy| policy.name);
    if let Some(pair) = policies.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(format!("{} is listed twice", pair[0].name));
    }
    Ok(policies)
}

fn parse_line(line: &'static str) -> Result<SslPolicy, String> {
    let fields: Vec<&'static str> = line.split_whitespace().collect();
    let [name, protocols, pq, fips] = fields[..] else {
        return Err(format!("`{line}` does not have the four fields name, protocols, pq, fips"));
    };
    let versions = protocols.split(',').map(protocol).collect::<Result<Vec<_>, _>>()?;
    let min_tls = versions.into_iter().min().ok_or_else(|| format!("{name} lists no protocol"))?;
    Ok(SslPolicy { name, min_tls, post_quantum: flag(pq, "pq")?, fips: flag(fips, "fips")? })
}

/// A protocol as `describe-ssl-policies` names it.
fn protocol(name: &str) -> Result<TlsVersion, String> {
    match name {
        "TLSv1" => Ok(Tls10),
        "TLSv1.1" => Ok(Tls11),
        "TLSv1.2" => Ok(Tls12),
        "TLSv1.3" => Ok(Tls13),
        other => Err(format!("`{other}` is not a TLS protocol (TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)")),
    }
}

fn flag(value: &str, set: &str) -> Result<bool, String> {
    match value {
        "-" => Ok(false),
        value if value == set => Ok(true),
        other => Err(format!("`{other}` is neither {set} nor -")),
    }
}

/// The predefined policy of that name (names are case-sensitive, as ELB's are).
pub fn predefined(name: &str) -> Option<SslPolicy> {
    POLICIES.binary_search_by(|policy| policy.name.cmp(name)).ok().map(|index| POLICIES[index])
}

/// AWS's recommendation for a TLS floor: the `-Res-` policies at TLS 1.2 (the post-quantum one
/// is what the ELB console now defaults to), the TLS 1.3-only ones above, FIPS variants for a
/// listener already on FIPS.
fn aws_recommendation(min_tls: TlsVersion, post_quantum: bool, fips: bool) -> &'static str {
    match (min_tls == Tls13, post_quantum, fips) {
        (false, false, false) => "ELBSecurityPolicy-TLS13-1-2-2021-06",
        (false, false, true) => "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        (false, true, false) => "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        (false, true, true) => "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
        (true, false, false) => "ELBSecurityPolicy-TLS13-1-3-2021-06",
        (true, false, true) => "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        (true, true, false) => "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        (true, true, true) => "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    }
}

/// Whether a predefined policy meets the TlsIngressPolicy's TLS floor and post-quantum demand.
fn meets(spec: &TlsIngressPolicySpec, policy: &SslPolicy) -> bool {
    policy.min_tls >= spec.min_tls_version && (policy.post_quantum || !spec.require_post_quantum)
}

/// The policy to suggest in place of `current`: the first allowed policy that passes, or AWS's
/// recommendation when no allowlist is set, keeping a FIPS listener on FIPS and a stricter floor
/// than the policy's where the listener has one.
fn recommended<'s>(spec: &'s TlsIngressPolicySpec, current: Option<&SslPolicy>) -> Option<&'s str> {
    if !spec.allowed_ssl_policies.is_empty() {
        return spec
            .allowed_ssl_policies
            .iter()
            .map(String::as_str)
            .find(|name| predefined(name).is_some_and(|policy| meets(spec, &policy)));
    }
    let fips = current.is_some_and(|policy| policy.fips);
    let floor = current.map_or(spec.min_tls_version, |policy| policy.min_tls.max(spec.min_tls_version));
    Some(aws_recommendation(floor, spec.require_post_quantum, fips))
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
    let known = predefined(policy);
    let problem = match known {
        None => {
            let what =
                if spec.require_post_quantum { "TLS versions and key exchanges" } else { "TLS versions" };
            format!("is not an ELB predefined security policy, so the {what} it accepts cannot be verified")
        }
        Some(known) if known.min_tls < spec.min_tls_version => {
            format!("accepts {}, below the policy's minimum {}", known.min_tls, spec.min_tls_version)
        }
        Some(known) if !meets(spec, &known) => {
            "offers no post-quantum key exchange (the policy sets requirePostQuantum)".to_string()
        }
        Some(_) if !allowed.is_empty() && !allowed.iter().any(|name| name == policy) => {
            "is not in the policy's allowedSslPolicies".to_string()
        }
        Some(_) => return None,
    };
    let origin = if defaulted { " (the controller's default, as none is set)" } else { "" };
    let remediation = match recommended(spec, known.as_ref()) {
        Some(recommended) => fix(recommended),
        None => {
            let post_quantum = if spec.require_post_quantum { " with post-quantum key exchange" } else { "" };
            format!(
                "No policy in the TlsIngressPolicy's allowedSslPolicies accepts only {} and above{post_quantum}; \
                 add one (e.g. {}) and use it",
                spec.min_tls_version,
                aws_recommendation(spec.min_tls_version, spec.require_post_quantum, false)
            )
        }
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

    /// The TLS floor a policy's name encodes: `TLS13-1-2` and `TLS-1-2` and `FS-1-2` mean TLS 1.2
    /// and up; the names without one (`2016-08`, `FS-2018-06`, ...) go down to TLS 1.0.
    fn floor_in_name(name: &str) -> TlsVersion {
        let family = name.trim_start_matches("ELBSecurityPolicy-");
        let version = ["TLS13-1-", "TLS-1-", "FS-1-"].iter().find_map(|prefix| family.strip_prefix(prefix));
        match version.and_then(|rest| rest.chars().next()) {
            Some('1') => Tls11,
            Some('2') => Tls12,
            Some('3') => Tls13,
            _ => Tls10,
        }
    }

    #[test]
    fn every_line_of_the_checked_in_table_parses_and_agrees_with_its_name() {
        let policies = parse_table(TABLE).expect("ssl_policies.txt parses");
        assert_eq!(policies.len(), 46);
        for policy in &policies {
            let name = policy.name;
            assert!(name.starts_with("ELBSecurityPolicy-"), "{name}");
            assert_eq!(policy.min_tls, floor_in_name(name), "{name}: the protocols disagree with the name");
            assert_eq!(policy.post_quantum, name.contains("-PQ-"), "{name}: pq disagrees with the name");
            assert_eq!(policy.fips, name.contains("-FIPS-"), "{name}: fips disagrees with the name");
            assert_eq!(predefined(name), Some(*policy));
        }
    }

    #[test]
    fn the_table_covers_the_2025_post_quantum_and_fips_post_quantum_families() {
        let mut post_quantum: Vec<&str> =
            POLICIES.iter().filter(|policy| policy.post_quantum).map(|policy| policy.name).collect();
        post_quantum.sort_unstable();
        let families = [
            "ELBSecurityPolicy-TLS13-1-0-FIPS-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
            "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        ];
        assert_eq!(post_quantum, families);
        assert_eq!(predefined("ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09").map(|p| p.min_tls), Some(Tls13));
        assert_eq!(predefined("ELBSecurityPolicy-TLS13-1-0-PQ-2025-09").map(|p| p.min_tls), Some(Tls10));
    }

    #[test]
    fn broken_lines_are_refused_naming_the_line() {
        let refused = |text: &'static str| parse_table(text).unwrap_err();
        assert_eq!(
            refused("# header\nP TLSv1.4 - -\n"),
            "line 2: `TLSv1.4` is not a TLS protocol (TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)"
        );
        assert!(refused("P TLSv1.2 -\n").contains("does not have the four fields"));
        assert!(refused("P TLSv1.2 - - extra\n").contains("does not have the four fields"));
        assert_eq!(refused("P TLSv1.2 yes -\n"), "line 1: `yes` is neither pq nor -");
        assert!(refused("P , - -\n").contains("`` is not a TLS protocol"));
        assert_eq!(refused("B TLSv1.2 - -\nA TLSv1.3 - -\nB TLSv1.3 - -\n"), "B is listed twice");
        assert_eq!(parse_table("B TLSv1.3 - -\nA TLSv1.2,TLSv1 pq fips\n").unwrap()[0].min_tls, Tls10);
    }

    #[test]
    fn names_are_exact() {
        assert_eq!(predefined("ELBSecurityPolicy-2016-08").map(|p| p.min_tls), Some(Tls10));
        assert_eq!(predefined("elbsecuritypolicy-2016-08"), None);
        assert_eq!(predefined("MyCustomPolicy"), None);
        assert_eq!(predefined(""), None);
    }

    #[test]
    fn aws_recommendations_are_predefined_and_pass_what_they_are_recommended_for() {
        for min_tls in [Tls10, Tls11, Tls12, Tls13] {
            for require_post_quantum in [false, true] {
                for fips in [false, true] {
                    let name = aws_recommendation(min_tls, require_post_quantum, fips);
                    let policy = predefined(name).unwrap_or_else(|| panic!("{name} is not in the table"));
                    let spec = TlsIngressPolicySpec {
                        min_tls_version: min_tls,
                        require_post_quantum,
                        ..TlsIngressPolicySpec::default()
                    };
                    assert!(meets(&spec, &policy), "{name} for {min_tls}, pq {require_post_quantum}");
                    assert_eq!(policy.fips, fips, "{name}");
                    assert!(policy.min_tls >= Tls12, "{name}: nothing below TLS 1.2 is recommended");
                }
            }
        }
    }

    fn judged(spec: &TlsIngressPolicySpec, policy: &str) -> Option<String> {
        judge(spec, policy, false, &"HTTPS listener 443", &|p| format!("use {p}")).map(|issue| issue.message)
    }

    fn remediation(spec: &TlsIngressPolicySpec, policy: &str) -> String {
        judge(spec, policy, true, &"l", &|p| format!("use {p}")).expect("a finding").remediation
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
        assert_eq!(
            remediation(&strict, "ELBSecurityPolicy-2016-08"),
            "use ELBSecurityPolicy-TLS13-1-3-PQ-2025-09"
        );
    }

    #[test]
    fn post_quantum_passes_only_pq_policies_at_the_floor() {
        let spec = TlsIngressPolicySpec { require_post_quantum: true, ..TlsIngressPolicySpec::default() };
        for name in
            ["ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09"]
        {
            assert_eq!(judged(&spec, name), None, "{name}");
        }
        assert!(
            judged(&spec, "ELBSecurityPolicy-TLS13-1-2-2021-06")
                .unwrap()
                .ends_with("which offers no post-quantum key exchange (the policy sets requirePostQuantum)")
        );
        assert_eq!(
            remediation(&spec, "ELBSecurityPolicy-TLS13-1-2-2021-06"),
            "use ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
        );
        // A FIPS listener is pointed at the FIPS post-quantum policy.
        assert_eq!(
            remediation(&spec, "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04"),
            "use ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09"
        );
        // Post-quantum key exchange does not excuse a low TLS floor.
        assert!(judged(&spec, "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09").unwrap().contains("accepts TLS 1.0"));
        assert!(
            judged(&spec, "MyPolicy")
                .unwrap()
                .ends_with("TLS versions and key exchanges it accepts cannot be verified")
        );
        // An allowed policy still has to be a post-quantum one.
        let allowed = TlsIngressPolicySpec {
            allowed_ssl_policies: vec![
                "ELBSecurityPolicy-TLS13-1-2-Res-2021-06".into(),
                "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09".into(),
            ],
            ..spec.clone()
        };
        assert!(
            judged(&allowed, "ELBSecurityPolicy-TLS13-1-2-Res-2021-06").unwrap().contains("post-quantum")
        );
        assert_eq!(
            remediation(&allowed, "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"),
            "use ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09"
        );
        let none_qualifies = TlsIngressPolicySpec {
            allowed_ssl_policies: vec!["ELBSecurityPolicy-TLS13-1-2-Res-2021-06".into()],
            ..spec
        };
        assert_eq!(
            remediation(&none_qualifies, "ELBSecurityPolicy-2016-08"),
            "No policy in the TlsIngressPolicy's allowedSslPolicies accepts only TLS 1.2 and above with post-quantum \
             key exchange; add one (e.g. ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09) and use it"
        );
    }

    #[test]
    fn recommendation_respects_the_allowlist() {
        let spec = |min_tls_version, allowed: &[&str]| TlsIngressPolicySpec {
            min_tls_version,
            allowed_ssl_policies: allowed.iter().map(|name| name.to_string()).collect(),
            ..TlsIngressPolicySpec::default()
        };
        assert_eq!(recommended(&spec(Tls12, &[]), None), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
        assert_eq!(recommended(&spec(Tls13, &[]), None), Some("ELBSecurityPolicy-TLS13-1-3-2021-06"));
        // A listener stricter than the policy is not pointed at a laxer policy.
        let tls13 = predefined("ELBSecurityPolicy-TLS13-1-3-2021-06");
        assert_eq!(
            recommended(&spec(Tls12, &[]), tls13.as_ref()),
            Some("ELBSecurityPolicy-TLS13-1-3-2021-06")
        );
        let allowed = ["ELBSecurityPolicy-2016-08", "Custom", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"];
        assert_eq!(
            recommended(&spec(Tls12, &allowed), None),
            Some("ELBSecurityPolicy-TLS13-1-2-Res-2021-06")
        );
        assert_eq!(recommended(&spec(Tls13, &allowed), None), None);
    }
}
