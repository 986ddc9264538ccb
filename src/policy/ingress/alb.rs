//! One ALB: its IngressGroup's settings merged per listener port the way the controller merges
//! them (`model_builder.go` `mergeListenPortConfigs` and `buildSSLRedirectConfig`,
//! `model_build_listener.go`), and the policy's rules judged on the result.
//!
//! Per Ingress, IngressClassParams `certificateArn`, `sslPolicy` and `sslRedirectPort` replace the
//! matching annotations. `listen-ports` defaults to HTTPS:443 when certificates are configured,
//! else HTTP:80. Per port, the protocol and ssl-policy of all Ingresses must agree, and the
//! certificates are unioned; an HTTPS port of an Ingress without certificates gets the ACM
//! certificates discovered for its hosts. `ssl-redirect` applies to every HTTP listener of the
//! ALB, must be the same wherever it is set, and must name an HTTPS listener.

use super::annotations::{
    CERTIFICATE_ARN, LISTEN_PORTS, Protocol, SSL_POLICY, SSL_REDIRECT, annotation, parse_listen_ports,
    parse_port, redirects_all_paths_to_https, string_list,
};
use super::certificates::{
    describe_non_acm, is_acm_certificate_arn, judge_configured, judge_state, name_covers,
};
use super::group::{AlbGroup, AlbMember, GroupId};
use super::ledger::{Issue, Ledger};
use super::{AlbDefaults, InventoryIndex, excluded, ssl_policy};
use crate::api::TlsIngressPolicySpec;
use crate::policy::facts::{CertificateFacts, Fact, Facts};
use crate::policy::{Judgement, Rule, Verdict, resource_ref};

/// Placeholder ARN in remediations that ask for a certificate.
const ACM_ARN_PLACEHOLDER: &str = "arn:aws:acm:<region>:<account>:certificate/<id>";

/// Evaluates one ALB. Returns one verdict per member, in member order.
pub fn evaluate_group(
    policy: &TlsIngressPolicySpec,
    group: &AlbGroup<'_>,
    index: &InventoryIndex<'_>,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Vec<Verdict> {
    // Each member's judgement, or the verdict it gets instead of one.
    let mut slots: Vec<Result<Judgement, Verdict>> = group
        .members
        .iter()
        .map(|member| excluded(policy, &member.ingress.metadata, index).map_or(Ok(Judgement::default()), Err))
        .collect();
    let Some(first_judged) = slots.iter().position(Result::is_ok) else {
        return slots.into_iter().map(into_verdict).collect();
    };
    let mut ledger =
        AlbEvaluation { policy, members: &group.members, facts, defaults, ledger: Ledger::default() }.run();

    for judgement in slots.iter_mut().flatten() {
        ledger.record_rules(judgement);
    }
    for (cause, issue) in std::mem::take(&mut ledger.issues) {
        let target = if slots[cause].is_ok() { cause } else { first_judged };
        let mut message = match group.id {
            GroupId::Explicit(name) => format!("IngressGroup {name}: {}", issue.message),
            GroupId::Implicit { .. } => issue.message,
        };
        if target != cause {
            let member = &group.members[cause];
            message.push_str(&format!(
                " (set on Ingress {}/{}, which this policy does not judge)",
                member.namespace(),
                member.name()
            ));
        }
        let resource = resource_ref(group.members[target].ingress);
        if let Ok(judgement) = &mut slots[target] {
            judgement.violation_at(issue.rule, issue.severity, &resource, message, issue.remediation);
        }
    }
    slots.into_iter().map(into_verdict).collect()
}

fn into_verdict(slot: Result<Judgement, Verdict>) -> Verdict {
    slot.map_or_else(|verdict| verdict, Verdict::Judged)
}

/// Where a member's setting comes from, for remediations that point at it.
#[derive(Clone, Copy, Debug)]
enum Source<'g> {
    Annotation,
    ClassParams(&'g str),
}

impl Source<'_> {
    /// How to set `value`: the annotation, or the IngressClassParams field that overrides it.
    fn fix(self, annotation: &str, params_field: &str, value: &str) -> String {
        match self {
            Source::Annotation => format!("Set `{annotation}: {value}` on the Ingress"),
            Source::ClassParams(params) => format!(
                "Set `spec.{params_field}: {value}` in IngressClassParams `{params}` (it overrides the {annotation} \
                 annotation)"
            ),
        }
    }
}

/// `ssl-redirect` of one member.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RedirectSetting {
    Unset,
    Port(u16),
    /// An unparsable `sslRedirectPort` in IngressClassParams: the controller then configures no
    /// redirect for the whole ALB.
    DisablesGroup,
}

/// The ALB's HTTP-to-HTTPS redirect (`ssl-redirect`), as the controller would build it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum GroupRedirect {
    None,
    ToPort(u16),
    /// Set, but so that the controller fails to build the ALB; the finding says why, and HTTP
    /// listeners are not judged on a configuration that cannot be deployed.
    Unbuildable,
}

/// One member's settings as the controller reads them.
struct Settings<'g> {
    certificates: Vec<&'g str>,
    certificate_source: Source<'g>,
    ssl_policy: Option<&'g str>,
    ssl_policy_source: Source<'g>,
    ports: Vec<(u16, Protocol)>,
    redirect: RedirectSetting,
    /// Rule hosts and TLS hosts, each once.
    hosts: Vec<&'g str>,
}

/// One listener of the ALB, merged over the members listening on its port.
struct Listener<'g> {
    port: u16,
    protocol: Protocol,
    /// Members on this port, in group order.
    members: Vec<usize>,
    /// The explicit policy and the member that set it first.
    ssl_policy: Option<(&'g str, usize)>,
    /// Configured certificate ARNs and the member that set each first.
    certificates: Vec<(&'g str, usize)>,
    discovered: Vec<(&'g CertificateFacts, usize)>,
    /// Discovery for some member's hosts waits on facts that were not gathered.
    discovery_pending: bool,
}

struct AlbEvaluation<'g> {
    policy: &'g TlsIngressPolicySpec,
    members: &'g [AlbMember<'g>],
    facts: &'g dyn Facts,
    defaults: &'g AlbDefaults,
    ledger: Ledger,
}

impl<'g> AlbEvaluation<'g> {
    fn run(mut self) -> Ledger {
        self.ledger.evaluate(Rule::AlbIngressAnnotationsValid);
        if self.members.len() > 1 {
            self.ledger.evaluate(Rule::AlbIngressGroupConsistent);
        }
        for (cause, member) in self.members.iter().enumerate() {
            for problem in &member.problems {
                self.ledger.report(cause, problem.clone());
            }
        }
        let settings: Vec<Settings<'g>> =
            self.members.iter().enumerate().map(|(cause, member)| self.settings(cause, member)).collect();
        let mut listeners = self.merge_listeners(&settings);
        let redirect = self.ssl_redirect(&settings, &listeners);
        self.judge_certificates_configured(&settings, &mut listeners);
        self.judge_ssl_policies(&listeners);
        self.judge_redirects(&listeners, redirect);
        self.judge_certificate_states(&settings, &listeners);
        self.ledger
    }

    fn describe(&self, member: usize) -> String {
        format!("{}/{}", self.members[member].namespace(), self.members[member].name())
    }

    fn settings(&mut self, cause: usize, member: &'g AlbMember<'g>) -> Settings<'g> {
        let annotations = member.ingress.metadata.annotations.as_ref();
        let params = member.class.params;
        let params_source =
            Source::ClassParams(params.and_then(|p| p.metadata.name.as_deref()).unwrap_or_default());

        let (certificates, certificate_source): (Vec<&str>, _) = match params
            .filter(|p| !p.spec.certificate_arn.is_empty())
        {
            Some(params) => (params.spec.certificate_arn.iter().map(String::as_str).collect(), params_source),
            None => (
                annotation(annotations, CERTIFICATE_ARN)
                    .map(|raw| string_list(raw).collect())
                    .unwrap_or_default(),
                Source::Annotation,
            ),
        };
        let (ssl_policy, ssl_policy_source) = match params.and_then(|p| p.spec.ssl_policy()) {
            Some(policy) => (Some(policy), params_source),
            None => (annotation(annotations, SSL_POLICY), Source::Annotation),
        };
        let ports = match annotation(annotations, LISTEN_PORTS) {
            None if certificates.is_empty() => vec![(80, Protocol::Http)],
            None => vec![(443, Protocol::Https)],
            Some(raw) => parse_listen_ports(raw).unwrap_or_else(|reason| {
                self.ledger.report(
                    cause,
                    Issue::new(
                        Rule::AlbIngressAnnotationsValid,
                        format!("{LISTEN_PORTS}: {reason}; the controller fails to build the ALB"),
                        format!(
                            "Set valid JSON, e.g. `{LISTEN_PORTS}: '[{{\"HTTP\": 80}}, {{\"HTTPS\": 443}}]'`"
                        ),
                    ),
                );
                Vec::new()
            }),
        };
        let redirect = match params.and_then(|p| p.spec.ssl_redirect_port()) {
            Some(raw) => parse_port(raw).map(RedirectSetting::Port).unwrap_or_else(|reason| {
                self.ledger.report(
                    cause,
                    Issue::new(
                        Rule::AlbIngressAnnotationsValid,
                        format!(
                            "sslRedirectPort of IngressClassParams: {reason}; the controller then configures no \
                             HTTP-to-HTTPS redirect for the whole ALB"
                        ),
                        params_source.fix(SSL_REDIRECT, "sslRedirectPort", "\"443\""),
                    ),
                );
                RedirectSetting::DisablesGroup
            }),
            None => match annotation(annotations, SSL_REDIRECT).map(parse_port) {
                None => RedirectSetting::Unset,
                Some(Ok(port)) => RedirectSetting::Port(port),
                Some(Err(reason)) => {
                    self.ledger.report(
                        cause,
                        Issue::new(
                            Rule::AlbIngressAnnotationsValid,
                            format!("{SSL_REDIRECT}: {reason}; the controller fails to build the ALB"),
                            format!("Set `{SSL_REDIRECT}: \"443\"` (the HTTPS listener port)"),
                        ),
                    );
                    RedirectSetting::Unset
                }
            },
        };
        Settings {
            certificates,
            certificate_source,
            ssl_policy,
            ssl_policy_source,
            ports,
            redirect,
            hosts: hosts(member),
        }
    }

    fn merge_listeners(&mut self, settings: &[Settings<'g>]) -> Vec<Listener<'g>> {
        let mut listeners: Vec<Listener<'g>> = Vec::new();
        for (cause, member) in settings.iter().enumerate() {
            for &(port, protocol) in &member.ports {
                let position =
                    listeners.iter().position(|listener| listener.port == port).unwrap_or_else(|| {
                        listeners.push(Listener {
                            port,
                            protocol,
                            members: Vec::new(),
                            ssl_policy: None,
                            certificates: Vec::new(),
                            discovered: Vec::new(),
                            discovery_pending: false,
                        });
                        listeners.len() - 1
                    });
                let listener = &mut listeners[position];
                if listener.protocol != protocol {
                    let message = format!(
                        "listen port {port} is {protocol} on Ingress {} but {} on Ingress {}; the controller \
                         refuses to build the ALB",
                        self.describe(cause),
                        listener.protocol,
                        self.describe(listener.members[0])
                    );
                    let remediation = format!(
                        "Use the same protocol for port {port} in {LISTEN_PORTS} of every Ingress of the group"
                    );
                    self.ledger
                        .report(cause, Issue::new(Rule::AlbIngressGroupConsistent, message, remediation));
                    continue;
                }
                listener.members.push(cause);
                if protocol != Protocol::Https {
                    continue;
                }
                match (listener.ssl_policy, member.ssl_policy) {
                    (None, Some(policy)) => listener.ssl_policy = Some((policy, cause)),
                    (Some((merged, provider)), Some(policy)) if merged != policy => {
                        let message = format!(
                            "HTTPS listener {port} gets security policy {policy} from Ingress {} but {merged} from \
                             Ingress {}; the controller refuses to build the ALB",
                            self.describe(cause),
                            self.describe(provider)
                        );
                        let remediation = member.ssl_policy_source.fix(SSL_POLICY, "sslPolicy", merged);
                        self.ledger
                            .report(cause, Issue::new(Rule::AlbIngressGroupConsistent, message, remediation));
                    }
                    _ => {}
                }
                for &arn in &member.certificates {
                    if !listener.certificates.iter().any(|(known, _)| *known == arn) {
                        listener.certificates.push((arn, cause));
                    }
                }
            }
        }
        listeners.sort_unstable_by_key(|listener| listener.port);
        listeners
    }

    fn ssl_redirect(&mut self, settings: &[Settings<'g>], listeners: &[Listener<'g>]) -> GroupRedirect {
        if settings.iter().any(|member| member.redirect == RedirectSetting::DisablesGroup) {
            return GroupRedirect::None;
        }
        let mut chosen: Option<(u16, usize)> = None;
        let mut conflicting = false;
        for (cause, member) in settings.iter().enumerate() {
            let RedirectSetting::Port(port) = member.redirect else { continue };
            match chosen {
                None => chosen = Some((port, cause)),
                Some((first, provider)) if first != port => {
                    conflicting = true;
                    let message = format!(
                        "{SSL_REDIRECT} is {port} on Ingress {} but {first} on Ingress {}; the controller refuses \
                         to build the ALB",
                        self.describe(cause),
                        self.describe(provider)
                    );
                    let remediation = format!(
                        "Set `{SSL_REDIRECT}: \"{first}\"` on every Ingress of the group that sets it"
                    );
                    self.ledger
                        .report(cause, Issue::new(Rule::AlbIngressGroupConsistent, message, remediation));
                }
                Some(_) => {}
            }
        }
        let Some((port, provider)) = chosen else { return GroupRedirect::None };
        if conflicting {
            return GroupRedirect::Unbuildable;
        }
        let problem = match listeners.iter().find(|listener| listener.port == port) {
            Some(listener) if listener.protocol == Protocol::Https => return GroupRedirect::ToPort(port),
            Some(_) => "an HTTP listener",
            None => "no listener",
        };
        let https_port = https_ports(listeners).next().unwrap_or(443);
        self.ledger.report(
            provider,
            Issue::new(
                Rule::AlbIngressAnnotationsValid,
                format!(
                    "{SSL_REDIRECT} redirects to port {port}, where the ALB has {problem}; the controller fails to \
                     build the ALB"
                ),
                format!("Set `{SSL_REDIRECT}: \"{https_port}\"`, an HTTPS port listed in {LISTEN_PORTS}"),
            ),
        );
        GroupRedirect::Unbuildable
    }

    /// `elbv2-acm-certificate-required`: the ALB has an HTTPS listener, each with ACM certificates
    /// (configured, or discoverable by the Ingress's hosts).
    fn judge_certificates_configured(&mut self, settings: &[Settings<'g>], listeners: &mut [Listener<'g>]) {
        self.ledger.evaluate(Rule::Elbv2AcmCertificateRequired);
        if https_ports(listeners).next().is_none() {
            self.ledger.report(
                0,
                Issue::new(
                    Rule::Elbv2AcmCertificateRequired,
                    "the ALB has no HTTPS listener: all its traffic is plaintext HTTP".into(),
                    format!(
                        "Set `{LISTEN_PORTS}: '[{{\"HTTP\": 80}}, {{\"HTTPS\": 443}}]'`, \
                         `{CERTIFICATE_ARN}: {ACM_ARN_PLACEHOLDER}` and `{SSL_REDIRECT}: \"443\"`"
                    ),
                ),
            );
            return;
        }
        // Certificates of an Ingress without HTTPS ports are never put on a listener.
        let listens_https =
            |member: &Settings<'g>| member.ports.iter().any(|(_, protocol)| *protocol == Protocol::Https);
        for (cause, member) in settings.iter().enumerate().filter(|(_, member)| listens_https(member)) {
            for arn in member.certificates.iter().filter(|arn| !is_acm_certificate_arn(arn)) {
                let message = format!(
                    "certificate {arn} is {}: the ALB must use an ACM certificate",
                    describe_non_acm(arn)
                );
                let remediation =
                    member.certificate_source.fix(CERTIFICATE_ARN, "certificateArn", ACM_ARN_PLACEHOLDER);
                self.ledger
                    .report(cause, Issue::new(Rule::Elbv2AcmCertificateRequired, message, remediation));
            }
        }
        for (cause, member) in settings.iter().enumerate() {
            if member.certificates.is_empty() && listens_https(member) {
                self.discover_certificates(cause, member, listeners);
            }
        }
    }

    /// The controller's certificate discovery for a member with HTTPS ports and no certificate:
    /// every host must match exactly the ISSUED ACM certificates found for it.
    fn discover_certificates(&mut self, cause: usize, member: &Settings<'g>, listeners: &mut [Listener<'g>]) {
        if member.hosts.is_empty() {
            self.ledger.report(
                cause,
                Issue::new(
                    Rule::Elbv2AcmCertificateRequired,
                    "the Ingress listens on HTTPS without a certificate: it sets no certificate-arn and has no host \
                     for the controller to discover an ACM certificate by"
                        .into(),
                    member.certificate_source.fix(CERTIFICATE_ARN, "certificateArn", ACM_ARN_PLACEHOLDER),
                ),
            );
            return;
        }
        let serves_member = |listener: &Listener<'g>| {
            listener.protocol == Protocol::Https && listener.members.contains(&cause)
        };
        for &host in &member.hosts {
            match self.facts.certificates_for_host(host) {
                Fact::Known(found) if !found.is_empty() => {
                    for listener in listeners.iter_mut().filter(|listener| serves_member(listener)) {
                        for certificate in &found {
                            if !listener.discovered.iter().any(|(known, _)| known.arn == certificate.arn) {
                                listener.discovered.push((certificate, cause));
                            }
                        }
                    }
                }
                Fact::Known(_) | Fact::NotFound => self.ledger.report(
                    cause,
                    Issue::new(
                        Rule::Elbv2AcmCertificateRequired,
                        format!(
                            "no ISSUED ACM certificate matches host {host}, so the controller cannot discover one \
                             and fails to build the HTTPS listener"
                        ),
                        format!(
                            "Request one with `aws acm request-certificate --domain-name {host} --validation-method \
                             DNS` and complete its validation (or set {CERTIFICATE_ARN})"
                        ),
                    ),
                ),
                Fact::Unknown | Fact::Failed(_) => {
                    self.ledger.pend(Rule::Elbv2AcmCertificateRequired);
                    for listener in listeners.iter_mut().filter(|listener| serves_member(listener)) {
                        listener.discovery_pending = true;
                    }
                }
            }
        }
    }

    fn judge_ssl_policies(&mut self, listeners: &[Listener<'g>]) {
        for listener in listeners.iter().filter(|listener| listener.protocol == Protocol::Https) {
            self.ledger.evaluate(Rule::Elbv2PredefinedSecurityPolicySslCheck);
            let (policy, cause, defaulted) = match listener.ssl_policy {
                Some((policy, provider)) => (policy, provider, false),
                None => (self.defaults.ssl_policy.as_str(), listener.members[0], true),
            };
            let source = match (defaulted, self.members[cause].class.params) {
                (false, Some(params)) if params.spec.ssl_policy().is_some() => {
                    Source::ClassParams(params.metadata.name.as_deref().unwrap_or_default())
                }
                _ => Source::Annotation,
            };
            let name = format_args!("HTTPS listener {}", listener.port);
            let fix = |recommended: &str| source.fix(SSL_POLICY, "sslPolicy", recommended);
            if let Some(issue) = ssl_policy::judge(self.policy, policy, defaulted, &name, &fix) {
                self.ledger.report(cause, issue);
            }
        }
    }

    /// `alb-http-to-https-redirection-check`: with no working `ssl-redirect`, every Ingress on an
    /// HTTP listener must send all its paths to an HTTPS redirect action.
    fn judge_redirects(&mut self, listeners: &[Listener<'g>], redirect: GroupRedirect) {
        if !self.policy.require_https_redirect {
            return;
        }
        self.ledger.evaluate(Rule::AlbHttpToHttpsRedirectionCheck);
        if redirect != GroupRedirect::None {
            return;
        }
        let https_port = https_ports(listeners).next().unwrap_or(443);
        for listener in listeners.iter().filter(|listener| listener.protocol == Protocol::Http) {
            for &cause in &listener.members {
                if redirects_all_paths_to_https(self.members[cause].ingress) {
                    continue;
                }
                self.ledger.report(
                    cause,
                    Issue::new(
                        Rule::AlbHttpToHttpsRedirectionCheck,
                        format!("HTTP listener {} serves the Ingress's paths without redirecting to HTTPS", listener.port),
                        format!("Set `{SSL_REDIRECT}: \"{https_port}\"` (with an HTTPS port {https_port} in {LISTEN_PORTS})"),
                    ),
                );
            }
        }
    }

    /// Status, expiry and host coverage of the certificates on each HTTPS listener.
    fn judge_certificate_states(&mut self, settings: &[Settings<'g>], listeners: &[Listener<'g>]) {
        let requirements = &self.policy.certificate;
        let now = self.facts.now();
        // Each certificate is judged once, however many listeners use it.
        let mut judged: Vec<(&str, Fact<&'g CertificateFacts>)> = Vec::new();
        for listener in listeners.iter().filter(|listener| listener.protocol == Protocol::Https) {
            let mut known: Vec<&CertificateFacts> = Vec::new();
            let mut unknown = listener.discovery_pending;
            for &(arn, provider) in
                listener.certificates.iter().filter(|(arn, _)| is_acm_certificate_arn(arn))
            {
                let fact = match judged.iter().find(|(seen, _)| *seen == arn) {
                    Some((_, fact)) => fact.clone(),
                    None => {
                        let fact =
                            judge_configured(self.facts, now, arn, requirements, &mut self.ledger, provider);
                        judged.push((arn, fact.clone()));
                        fact
                    }
                };
                match fact {
                    Fact::Known(certificate) => known.push(certificate),
                    Fact::Unknown | Fact::Failed(_) => unknown = true,
                    Fact::NotFound => {}
                }
            }
            for &(certificate, provider) in &listener.discovered {
                if !judged.iter().any(|(seen, _)| *seen == certificate.arn) {
                    judge_state(certificate, requirements, now, &mut self.ledger, provider);
                    judged.push((&certificate.arn, Fact::Known(certificate)));
                }
                known.push(certificate);
            }
            // A listener without any certificate is reported as elbv2-acm-certificate-required.
            if !known.is_empty() || unknown {
                self.judge_host_coverage(settings, listener, &known, unknown);
            }
        }
    }

    /// `acm-certificate-host-coverage`: each host of the Ingresses on the listener is covered by
    /// one of its certificates.
    fn judge_host_coverage(
        &mut self,
        settings: &[Settings<'g>],
        listener: &Listener<'g>,
        known: &[&CertificateFacts],
        unknown: bool,
    ) {
        self.ledger.evaluate(Rule::AcmCertificateHostCoverage);
        let mut seen: Vec<&str> = Vec::new();
        for &cause in &listener.members {
            for &host in &settings[cause].hosts {
                if seen.contains(&host) {
                    continue;
                }
                seen.push(host);
                let covered = known
                    .iter()
                    .any(|certificate| certificate.domain_names.iter().any(|name| name_covers(name, host)));
                if covered {
                    continue;
                }
                if unknown {
                    // A certificate not looked up might cover it.
                    self.ledger.pend(Rule::AcmCertificateHostCoverage);
                    continue;
                }
                let names: Vec<&str> = known
                    .iter()
                    .flat_map(|certificate| certificate.domain_names.iter().map(String::as_str))
                    .collect();
                self.ledger.report(
                    cause,
                    Issue::new(
                        Rule::AcmCertificateHostCoverage,
                        format!(
                            "no certificate on HTTPS listener {} covers host {host} (they cover: {})",
                            listener.port,
                            names.join(", ")
                        ),
                        format!(
                            "Request a certificate for it (`aws acm request-certificate --domain-name {host} \
                             --validation-method DNS`) and add its ARN: {}",
                            settings[cause].certificate_source.fix(
                                CERTIFICATE_ARN,
                                "certificateArn",
                                "<existing ARNs>,<new ARN>"
                            )
                        ),
                    ),
                );
            }
        }
    }
}

fn https_ports<'l>(listeners: &'l [Listener<'_>]) -> impl Iterator<Item = u16> + 'l {
    listeners.iter().filter(|listener| listener.protocol == Protocol::Https).map(|listener| listener.port)
}

/// The hosts of an Ingress's rules and TLS entries, each once.
fn hosts<'g>(member: &'g AlbMember<'g>) -> Vec<&'g str> {
    let Some(spec) = &member.ingress.spec else { return Vec::new() };
    let rule_hosts = spec.rules.iter().flatten().filter_map(|rule| rule.host.as_deref());
    let tls_hosts = spec.tls.iter().flatten().flat_map(|tls| tls.hosts.iter().flatten().map(String::as_str));
    let mut hosts: Vec<&str> = Vec::new();
    for host in rule_hosts.chain(tls_hosts).filter(|host| !host.is_empty()) {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}
