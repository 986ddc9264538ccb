//! The rules on one Gateway's load balancer listeners.

use super::routes::Attached;
use super::{Configurations, Gateway, Kind, ListenerConfiguration, LoadBalancerConfiguration};
use crate::api::TlsIngressPolicySpec;
use crate::policy::Rule;
use crate::policy::facts::{CertificateFacts, Fact, Facts};
use crate::policy::ingress::certificates::{
    describe_non_acm, discover, is_acm_certificate_arn, judge_configured, judge_host_coverage, judge_state,
};
use crate::policy::ingress::ledger::{Issue, Ledger};
use crate::policy::ingress::{AlbDefaults, ssl_policy};
use kube::ResourceExt;

const REDIRECT_FILTER: &str =
    "filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]";

/// One load balancer listener: the Gateway's listeners on one port (the controller merges them,
/// and refuses a port whose listeners disagree on the protocol).
struct Port<'g> {
    port: i32,
    protocol: &'g str,
    /// Indexes into `spec.listeners`.
    listeners: Vec<usize>,
    hostnames: Vec<&'g str>,
    /// Whether one of the listeners names Secrets in `tls.certificateRefs`.
    certificate_refs: bool,
}

impl Port<'_> {
    fn label(&self) -> String {
        format!("{} listener {}", self.protocol, self.port)
    }
}

/// The ledger of a Gateway whose LoadBalancerConfiguration references the controller refuses.
pub(super) fn refused(message: String) -> Ledger {
    let mut ledger = Ledger::default();
    ledger.report(
        0,
        Issue::new(
            Rule::AlbIngressAnnotationsValid,
            format!("{message}, so the controller does not build the load balancer"),
            "Create the LoadBalancerConfiguration or correct the reference (a GatewayClass's parametersRef needs \
             its namespace)"
                .into(),
        ),
    );
    ledger
}

pub(super) fn judge(
    policy: &TlsIngressPolicySpec,
    gateway: &Gateway,
    kind: Kind,
    configurations: &Configurations<'_>,
    routes: &[Attached<'_>],
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Ledger {
    let mut ledger = Ledger::default();
    let ports = ports(gateway, &mut ledger);
    ledger.evaluate(Rule::Elbv2AcmCertificateRequired);
    let secure = if kind == Kind::Alb { "HTTPS" } else { "TLS" };
    if !ports.iter().any(|port| port.protocol == secure) {
        ledger.report(
            0,
            Issue::new(
                Rule::Elbv2AcmCertificateRequired,
                format!("the Gateway has no {secure} listener: all its traffic is plaintext"),
                format!(
                    "Add a listener `{{name: {name}, port: 443, protocol: {secure}, hostname: <host>}}` and give it \
                     an ACM certificate (`{{protocolPort: \"{secure}:443\", defaultCertificate: <acm-arn>}}` in the \
                     listenerConfigurations of its LoadBalancerConfiguration)",
                    name = secure.to_lowercase()
                ),
            ),
        );
    }
    let mut judged = Vec::new();
    for port in &ports {
        match (kind, port.protocol) {
            (Kind::Alb, "HTTP") if policy.require_https_redirect => judge_redirect(port, routes, &mut ledger),
            (Kind::Nlb, "TCP") => ledger.report(
                0,
                Issue::new(
                    Rule::Elbv2AcmCertificateRequired,
                    format!("{} of the NLB is plain TCP: it has no TLS", port.label()),
                    format!(
                        "Make the listener on port {} `protocol: TLS`, with an ACM certificate",
                        port.port
                    ),
                ),
            ),
            (_, protocol) if protocol == secure => {
                let entry = configurations.listener(port.port);
                let fix = |field: &str, value: &str| setting_fix(port, entry, field, value);
                let known = judge_certificates(policy, port, entry, facts, &fix, &mut judged, &mut ledger);
                judge_coverage(port, routes, known, &fix, &mut ledger);
                ledger.evaluate(Rule::Elbv2PredefinedSecurityPolicySslCheck);
                let configured =
                    entry.and_then(|(entry, _)| entry.ssl_policy.as_deref()).filter(|p| !p.is_empty());
                let name = configured.unwrap_or(&defaults.ssl_policy);
                let fix = |recommended: &str| fix("sslPolicy", recommended);
                if let Some(issue) =
                    ssl_policy::judge(policy, name, configured.is_none(), &port.label(), &fix)
                {
                    ledger.report(0, issue);
                }
            }
            // UDP cannot carry TLS; other protocols the controller does not build on this kind.
            _ => {}
        }
    }
    ledger
}

/// The Gateway's listeners by port, in order of first appearance; a port whose listeners
/// disagree on the protocol is reported and left out, as the controller refuses it.
fn ports<'g>(gateway: &'g Gateway, ledger: &mut Ledger) -> Vec<Port<'g>> {
    let mut ports: Vec<Port<'g>> = Vec::new();
    for (position, listener) in gateway.spec.listeners.iter().enumerate() {
        let port = match ports.iter().position(|port| port.port == listener.port) {
            Some(found) => &mut ports[found],
            None => {
                ports.push(Port {
                    port: listener.port,
                    protocol: &listener.protocol,
                    listeners: Vec::new(),
                    hostnames: Vec::new(),
                    certificate_refs: false,
                });
                ports.last_mut().expect("just pushed")
            }
        };
        port.listeners.push(position);
        port.certificate_refs |= listener.tls.as_ref().is_some_and(|tls| !tls.certificate_refs.is_empty());
        if let Some(hostname) = listener.hostname.as_deref().filter(|h| !port.hostnames.contains(h)) {
            port.hostnames.push(hostname);
        }
    }
    ports.retain(|port| {
        let agree = port.listeners.iter().all(|&i| gateway.spec.listeners[i].protocol == port.protocol);
        if !agree {
            ledger.report(
                0,
                Issue::new(
                    Rule::AlbIngressAnnotationsValid,
                    format!(
                        "listeners on port {} have different protocols, which the controller refuses",
                        port.port
                    ),
                    format!(
                        "Give every listener on port {} the same protocol, or move some to another port",
                        port.port
                    ),
                ),
            );
        }
        agree
    });
    ports
}

/// How to set `field` to `value` for the port: in the LoadBalancerConfiguration entry that
/// configures it, or in a new entry.
fn setting_fix(
    port: &Port<'_>,
    entry: Option<(&ListenerConfiguration, &LoadBalancerConfiguration)>,
    field: &str,
    value: &str,
) -> String {
    match entry {
        Some((entry, configuration)) => format!(
            "Set `{field}: {value}` in the listenerConfigurations entry `{}` of LoadBalancerConfiguration `{}/{}`",
            entry.protocol_port,
            configuration.namespace().unwrap_or_default(),
            configuration.name_any()
        ),
        None => format!(
            "Add `{{protocolPort: \"{}:{}\", {field}: {value}}}` to the listenerConfigurations of the Gateway's \
             LoadBalancerConfiguration (spec.infrastructure.parametersRef)",
            port.protocol, port.port
        ),
    }
}

/// `alb-http-to-https-redirection-check`: every rule of every route on an HTTP listener redirects
/// to https; a listener no route attaches to serves nothing.
fn judge_redirect(port: &Port<'_>, routes: &[Attached<'_>], ledger: &mut Ledger) {
    ledger.evaluate(Rule::AlbHttpToHttpsRedirectionCheck);
    let mut seen: Vec<&super::HTTPRoute> = Vec::new();
    for attached in routes.iter().filter(|a| port.listeners.contains(&a.listener)) {
        let route = attached.route;
        // A route attached to several listeners of the port is reported once.
        if seen.iter().any(|known| std::ptr::eq(*known, route)) {
            continue;
        }
        seen.push(route);
        let redirects = |filters: &[super::HttpRouteFilter]| {
            filters.iter().any(|filter| {
                filter.type_ == "RequestRedirect"
                    && filter.request_redirect.as_ref().and_then(|r| r.scheme.as_deref()) == Some("https")
            })
        };
        // A route without rules has the default one (match everything), which redirects nowhere.
        let plain: Vec<String> = if route.spec.rules.is_empty() {
            vec!["its default rule".into()]
        } else {
            let rules = route.spec.rules.iter().enumerate();
            rules.filter(|(_, rule)| !redirects(&rule.filters)).map(|(i, _)| format!("rules[{i}]")).collect()
        };
        if plain.is_empty() {
            continue;
        }
        let name = format!("{}/{}", route.namespace().unwrap_or_default(), route.name_any());
        ledger.report(
            0,
            Issue::new(
                Rule::AlbHttpToHttpsRedirectionCheck,
                format!(
                    "HTTPRoute {name} serves plain HTTP on {} ({}): no RequestRedirect filter with scheme https",
                    port.label(),
                    plain.join(", ")
                ),
                format!(
                    "Attach HTTPRoute {name} to the HTTPS listener only (parentRefs sectionName), and give the HTTP \
                     listener a route whose rule has `{REDIRECT_FILTER}`"
                ),
            ),
        );
    }
}

/// `elbv2-acm-certificate-required` and the certificates' state on one secure port: the
/// configured certificates, or those discovered by the listeners' hostnames. Returns the known
/// certificates and whether some could not be looked up.
fn judge_certificates<'f>(
    policy: &TlsIngressPolicySpec,
    port: &Port<'_>,
    entry: Option<(&ListenerConfiguration, &LoadBalancerConfiguration)>,
    facts: &'f dyn Facts,
    fix: &dyn Fn(&str, &str) -> String,
    judged: &mut Vec<String>,
    ledger: &mut Ledger,
) -> (Vec<&'f CertificateFacts>, bool) {
    let now = facts.now();
    let arns: Vec<&str> = entry.map(|(entry, _)| entry.certificate_arns().collect()).unwrap_or_default();
    let (mut known, mut unknown) = (Vec::new(), false);
    for arn in &arns {
        if !is_acm_certificate_arn(arn) {
            ledger.report(
                0,
                Issue::new(
                    Rule::Elbv2AcmCertificateRequired,
                    format!(
                        "certificate {arn} of {} is {}: it must be an ACM certificate",
                        port.label(),
                        describe_non_acm(arn)
                    ),
                    fix("defaultCertificate", "arn:aws:acm:<region>:<account>:certificate/<id>"),
                ),
            );
            continue;
        }
        let fresh = !judged.iter().any(|seen| seen == arn);
        let fact = if fresh {
            judged.push(arn.to_string());
            judge_configured(facts, now, arn, &policy.certificate, ledger, 0)
        } else {
            facts.certificate(arn)
        };
        match fact {
            Fact::Known(certificate) => known.push(certificate),
            Fact::Unknown | Fact::Failed(_) => unknown = true,
            Fact::NotFound => {}
        }
    }
    if !arns.is_empty() {
        return (known, unknown);
    }
    if port.hostnames.is_empty() {
        let ignored =
            if port.certificate_refs { " (the controller does not read tls.certificateRefs)" } else { "" };
        ledger.report(
            0,
            Issue::new(
                Rule::Elbv2AcmCertificateRequired,
                format!(
                    "{} has no certificate: no LoadBalancerConfiguration gives it one, and it has no hostname for the \
                     controller to discover an ACM certificate by{ignored}",
                    port.label()
                ),
                fix("defaultCertificate", "arn:aws:acm:<region>:<account>:certificate/<id>"),
            ),
        );
        return (known, unknown);
    }
    let name_it = |arn: &str| fix("defaultCertificate", arn);
    for &host in &port.hostnames {
        match discover(facts, host, "defaultCertificate in the LoadBalancerConfiguration", &name_it) {
            Err(issue) => ledger.report(0, issue),
            Ok(Fact::Known(found)) => {
                for certificate in found {
                    if !judged.contains(&certificate.arn) {
                        judged.push(certificate.arn.clone());
                        judge_state(certificate, &policy.certificate, now, ledger, 0);
                    }
                    known.push(certificate);
                }
            }
            Ok(other) => {
                ledger.pend_for(Rule::Elbv2AcmCertificateRequired, &other);
                unknown = true;
            }
        }
    }
    (known, unknown)
}

/// `acm-certificate-host-coverage`: the port's certificates cover its listeners' hostnames and
/// those of the routes attached to them.
fn judge_coverage(
    port: &Port<'_>,
    routes: &[Attached<'_>],
    (known, unknown): (Vec<&CertificateFacts>, bool),
    fix: &dyn Fn(&str, &str) -> String,
    ledger: &mut Ledger,
) {
    if known.is_empty() && !unknown {
        // No certificate at all is an elbv2-acm-certificate-required finding.
        return;
    }
    let route_hosts = routes.iter().filter(|a| port.listeners.contains(&a.listener)).flat_map(|a| &a.hosts);
    let mut hosts: Vec<&str> = port.hostnames.clone();
    for host in route_hosts {
        if !hosts.contains(&host.as_str()) {
            hosts.push(host);
        }
    }
    let add_arn = || fix("certificates", "[<new ARN>]");
    for host in hosts {
        judge_host_coverage(ledger, 0, &port.label(), host, (&known, unknown), &add_arn);
    }
}
