//! One ALB: its IngressGroup's settings merged per listener port the way the controller merges
//! them (`model_builder.go` `mergeListenPortConfigs` and `buildSSLRedirectConfig`,
//! `model_build_listener.go`), and the policy's rules judged on the result.
//!
//! Per Ingress, IngressClassParams `certificateArn` (Auto Mode: `certificateARNs`), `sslPolicy`
//! and `sslRedirectPort` replace the matching annotations. `listen-ports` defaults to HTTPS:443
//! when certificates are configured, else HTTP:80. Per port, the protocol and ssl-policy of all Ingresses must agree, and the
//! certificates are unioned; an HTTPS port of an Ingress without certificates gets the ACM
//! certificates discovered for its hosts. `ssl-redirect` applies to every HTTP listener of the
//! ALB, must be the same wherever it is set, and must name an HTTPS listener.

use super::alb_certificates::hosts;
use super::annotations::{
    CERTIFICATE_ARN, LISTEN_PORTS, Protocol, SSL_POLICY, SSL_REDIRECT, annotation, parse_listen_ports,
    parse_port, redirects_all_paths_to_https, string_list,
};
use super::group::{AlbGroup, AlbMember, GroupId};
use super::ledger::{Issue, Ledger};
use super::params::ClassParams;
use super::{AlbDefaults, InventoryIndex, excluded, ssl_policy};
use crate::api::TlsIngressPolicySpec;
use crate::policy::facts::{CertificateFacts, Facts};
use crate::policy::{Judgement, Rule, Verdict, resource_ref};

/// Placeholder ARN in remediations that ask for a certificate.
pub(super) const ACM_ARN_PLACEHOLDER: &str = "arn:aws:acm:<region>:<account>:certificate/<id>";

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
        .map(|member| {
            excluded(policy, &member.ingress.metadata, index, defaults).map_or(Ok(Judgement::default()), Err)
        })
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
pub(super) enum Source<'g> {
    Annotation,
    ClassParams(&'g str),
}

impl Source<'_> {
    /// How to set `value`: the annotation, or the IngressClassParams field that overrides it.
    pub(super) fn fix(self, annotation: &str, params_field: &str, value: &str) -> String {
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
pub(super) struct Settings<'g> {
    pub(super) certificates: Vec<&'g str>,
    pub(super) certificate_source: Source<'g>,
    /// The IngressClassParams field that would list certificates for this member.
    pub(super) certificate_field: &'static str,
    pub(super) ssl_policy: Option<&'g str>,
    pub(super) ssl_policy_source: Source<'g>,
    pub(super) ports: Vec<(u16, Protocol)>,
    redirect: RedirectSetting,
    /// Rule hosts and TLS hosts, each once.
    pub(super) hosts: Vec<&'g str>,
    /// An annotation the controller cannot read makes it fail to build the ALB.
    unbuildable: bool,
}

/// One listener of the ALB, merged over the members listening on its port.
pub(super) struct Listener<'g> {
    pub(super) port: u16,
    pub(super) protocol: Protocol,
    /// Members on this port, in group order.
    pub(super) members: Vec<usize>,
    /// The explicit policy and the member that set it first.
    pub(super) ssl_policy: Option<(&'g str, usize)>,
    /// Configured certificate ARNs and the member that set each first.
    pub(super) certificates: Vec<(&'g str, usize)>,
    pub(super) discovered: Vec<(&'g CertificateFacts, usize)>,
    /// Discovery for some member's hosts waits on facts that were not gathered.
    pub(super) discovery_pending: bool,
}

pub(super) struct AlbEvaluation<'g> {
    pub(super) policy: &'g TlsIngressPolicySpec,
    pub(super) members: &'g [AlbMember<'g>],
    pub(super) facts: &'g dyn Facts,
    pub(super) defaults: &'g AlbDefaults,
    pub(super) ledger: Ledger,
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
        if settings.iter().any(|s| s.unbuildable) {
            // The controller builds nothing for the group: its finding is the one root cause, and
            // listeners it would never build are not judged.
            return self.ledger;
        }
        let mut listeners = self.merge_listeners(&settings);
        let redirect = self.ssl_redirect(&settings, &listeners);
        self.judge_certificates_configured(&settings, &mut listeners);
        self.judge_ssl_policies(&listeners);
        self.judge_redirects(&listeners, redirect);
        self.judge_certificate_states(&settings, &listeners);
        self.judge_waf();
        self.ledger
    }

    pub(super) fn describe(&self, member: usize) -> String {
        format!("{}/{}", self.members[member].namespace(), self.members[member].name())
    }

    fn settings(&mut self, cause: usize, member: &'g AlbMember<'g>) -> Settings<'g> {
        let annotations = member.ingress.metadata.annotations.as_ref();
        let params = member.class.params;
        let params_source = Source::ClassParams(params.map(ClassParams::name).unwrap_or_default());

        let certificate_field = params.map_or("certificateArn", |params| params.certificates().1);
        let (certificates, certificate_source): (Vec<&str>, _) =
            match params.map(ClassParams::certificates).filter(|(arns, _)| !arns.is_empty()) {
                Some((arns, _)) => (arns.iter().map(String::as_str).collect(), params_source),
                None => (
                    annotation(annotations, CERTIFICATE_ARN)
                        .map(|raw| string_list(raw).collect())
                        .unwrap_or_default(),
                    Source::Annotation,
                ),
            };
        let (ssl_policy, ssl_policy_source) = match params.and_then(ClassParams::ssl_policy) {
            Some(policy) => (Some(policy), params_source),
            None => (annotation(annotations, SSL_POLICY), Source::Annotation),
        };
        let mut unbuildable = false;
        let ports = match annotation(annotations, LISTEN_PORTS) {
            None if certificates.is_empty() => vec![(80, Protocol::Http)],
            None => vec![(443, Protocol::Https)],
            Some(raw) => parse_listen_ports(raw).unwrap_or_else(|reason| {
                unbuildable = true;
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
        let redirect = match params.and_then(ClassParams::ssl_redirect_port) {
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
                    unbuildable = true;
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
            certificate_field,
            ssl_policy,
            ssl_policy_source,
            ports,
            redirect,
            hosts: hosts(member),
            unbuildable,
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

    fn judge_ssl_policies(&mut self, listeners: &[Listener<'g>]) {
        for listener in listeners.iter().filter(|listener| listener.protocol == Protocol::Https) {
            self.ledger.evaluate(Rule::Elbv2PredefinedSecurityPolicySslCheck);
            let (policy, cause, defaulted) = match listener.ssl_policy {
                Some((policy, provider)) => (policy, provider, false),
                None => (self.defaults.ssl_policy.as_str(), listener.members[0], true),
            };
            let source = match (defaulted, self.members[cause].class.params) {
                (false, Some(params)) if params.ssl_policy().is_some() => Source::ClassParams(params.name()),
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
}

pub(super) fn https_ports<'l>(listeners: &'l [Listener<'_>]) -> impl Iterator<Item = u16> + 'l {
    listeners.iter().filter(|listener| listener.protocol == Protocol::Https).map(|listener| listener.port)
}
