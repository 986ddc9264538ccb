//! Services of type LoadBalancer served by an NLB: TLS listeners need ACM certificates and a
//! security policy with a high enough TLS floor (annotations of the AWS Load Balancer Controller,
//! `docs/guide/service/annotations.md`; the in-tree `nlb` type reads the same ones).
//!
//! Listeners as the controller builds them (`pkg/service/model_build_listener.go`): with
//! `aws-load-balancer-ssl-cert` set, a TCP port is TLS when `aws-load-balancer-ssl-ports` is
//! unset or lists its name or number; without a certificate no port is. The controller reads `*`
//! as a port name, and refuses to build an NLB whose `ssl-ports` lists a port the Service does not
//! have (`validateTLSPortsSet`); the cloud provider's in-tree `nlb` type reads `*` as every port.
//! With `aws-load-balancer-enable-tcp-udp-listener: "true"`, a TCP and a UDP port of one number
//! become one `TCP_UDP` listener, which is never TLS whatever `ssl-ports` says.

use super::annotations::{
    AUTO_MODE_NLB_LOAD_BALANCER_CLASS, NLB_LOAD_BALANCER_CLASS, NLB_SSL_CERT, NLB_SSL_POLICY, NLB_SSL_PORTS,
    NLB_TCP_UDP_LISTENER, NLB_TYPE, annotation, string_list,
};
use super::certificates::{describe_non_acm, is_acm_certificate_arn, judge_configured};
use super::ledger::{Issue, Ledger};
use super::{AlbDefaults, InventoryIndex, excluded, ssl_policy};
use crate::api::{Severity, TlsIngressPolicySpec};
use crate::policy::{Facts, Rule, Verdict, resource_ref};
use k8s_openapi::api::core::v1::{Service, ServicePort};

/// `aws-load-balancer-type` values that make an NLB: `external` and the deprecated `nlb-ip` (AWS
/// Load Balancer Controller) and `nlb` (the in-tree cloud provider).
const NLB_TYPES: [&str; 3] = ["external", "nlb-ip", "nlb"];
/// The in-tree cloud provider's NLB type.
const IN_TREE_NLB: &str = "nlb";
const CERTIFICATE_PLACEHOLDER: &str = "arn:aws:acm:<region>:<account>:certificate/<id>";

/// Evaluates one Service.
pub fn evaluate_service(
    policy: &TlsIngressPolicySpec,
    service: &Service,
    index: &InventoryIndex<'_>,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Verdict {
    if !policy.include_services {
        return Verdict::NotApplicable("the policy does not include Services".into());
    }
    if let Some(reason) = not_an_nlb(service, defaults) {
        return Verdict::NotApplicable(reason);
    }
    if let Some(verdict) = excluded(policy, &service.metadata, index, defaults) {
        return verdict;
    }
    judge(policy, service, facts, defaults).into_verdict(&resource_ref(service))
}

fn not_an_nlb(service: &Service, defaults: &AlbDefaults) -> Option<String> {
    let spec = service.spec.as_ref();
    let service_type = spec.and_then(|spec| spec.type_.as_deref()).unwrap_or("ClusterIP");
    if service_type != "LoadBalancer" {
        return Some(format!("a {service_type} Service has no load balancer"));
    }
    match spec.and_then(|spec| spec.load_balancer_class.as_deref()) {
        Some(NLB_LOAD_BALANCER_CLASS | AUTO_MODE_NLB_LOAD_BALANCER_CLASS) => None,
        Some(class) => Some(format!(
            "loadBalancerClass `{class}` is neither the AWS Load Balancer Controller's nor EKS Auto Mode's"
        )),
        None if defaults.eks_auto_mode => None,
        None => match annotation(service.metadata.annotations.as_ref(), NLB_TYPE) {
            Some(kind) if NLB_TYPES.contains(&kind) => None,
            _ => Some(format!(
                "not an NLB: neither loadBalancerClass {NLB_LOAD_BALANCER_CLASS} nor {NLB_TYPE} set"
            )),
        },
    }
}

/// The TLS settings of an NLB Service, read the way whoever builds it reads them.
struct TlsSettings<'s> {
    certificates: Vec<&'s str>,
    /// `ssl-ports` entries; empty: every port.
    ssl_ports: Vec<&'s str>,
    /// The in-tree cloud provider builds the NLB rather than the AWS Load Balancer Controller.
    in_tree: bool,
    /// TCP and UDP ports of one number share a `TCP_UDP` listener.
    tcp_udp: bool,
}

impl<'s> TlsSettings<'s> {
    fn read(service: &'s Service, defaults: &AlbDefaults) -> TlsSettings<'s> {
        let annotations = service.metadata.annotations.as_ref();
        let list =
            |key| annotation(annotations, key).map(|raw| string_list(raw).collect()).unwrap_or_default();
        let unclassed = service.spec.as_ref().is_none_or(|spec| spec.load_balancer_class.is_none());
        TlsSettings {
            certificates: list(NLB_SSL_CERT),
            ssl_ports: list(NLB_SSL_PORTS),
            in_tree: unclassed
                && !defaults.eks_auto_mode
                && annotation(annotations, NLB_TYPE) == Some(IN_TREE_NLB),
            // Go's `strconv.ParseBool`; unset or unreadable, the controller's `EnableTCPUDPListener`
            // feature gate decides, off unless enabled.
            tcp_udp: matches!(
                annotation(annotations, NLB_TCP_UDP_LISTENER),
                Some("1" | "t" | "T" | "true" | "TRUE" | "True")
            ),
        }
    }

    fn lists(&self, port: &ServicePort) -> bool {
        self.ssl_ports.iter().any(|entry| names(entry, port))
    }

    /// Whether a TCP listener on `port` is TLS.
    fn is_tls(&self, port: &ServicePort) -> bool {
        let every_port = self.ssl_ports.is_empty() || (self.in_tree && self.ssl_ports == ["*"]);
        !self.certificates.is_empty() && (every_port || self.lists(port))
    }

    /// What makes a plaintext TCP listener on `port` TLS, every step of it.
    fn fix(&self, port: &ServicePort, shares_udp: bool) -> String {
        let mut steps = Vec::new();
        if shares_udp {
            steps.push(format!(
                "serve UDP on a port number of its own: the TCP and UDP ports {} make one TCP_UDP listener, which \
                 cannot terminate TLS",
                port.port
            ));
        }
        if self.certificates.is_empty() {
            steps.push(format!("set `{NLB_SSL_CERT}: {CERTIFICATE_PLACEHOLDER}`"));
        }
        if !self.ssl_ports.is_empty() && !self.lists(port) {
            steps.push(format!(
                "add the port to `{NLB_SSL_PORTS}: \"{},{}\"`",
                self.ssl_ports.join(","),
                port.port
            ));
        }
        let steps = steps.join("; ");
        let mut chars = steps.chars();
        chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
    }
}

/// Whether an `ssl-ports` entry is the port's name or number.
fn names(entry: &str, port: &ServicePort) -> bool {
    port.name.as_deref() == Some(entry) || entry == port.port.to_string()
}

fn protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().unwrap_or("TCP")
}

fn judge(
    policy: &TlsIngressPolicySpec,
    service: &Service,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Ledger {
    let annotations = service.metadata.annotations.as_ref();
    let settings = TlsSettings::read(service, defaults);
    let ports: Vec<&ServicePort> = service.spec.iter().flat_map(|spec| spec.ports.iter().flatten()).collect();
    let mut ledger = Ledger::default();
    if let Some(issue) = unbuildable(&settings, &ports) {
        ledger.evaluate(Rule::AlbIngressAnnotationsValid);
        ledger.report(0, issue);
        return ledger;
    }
    ledger.evaluate(Rule::Elbv2AcmCertificateRequired);
    let mut tls_ports = 0;
    // NLBs terminate TLS on TCP ports only; UDP and SCTP listeners cannot carry it.
    for port in ports.iter().filter(|port| protocol(port) == "TCP") {
        let shares_udp = !settings.in_tree
            && settings.tcp_udp
            && ports.iter().any(|other| other.port == port.port && protocol(other) == "UDP");
        if !shares_udp && settings.is_tls(port) {
            tls_ports += 1;
            continue;
        }
        let label = match &port.name {
            Some(name) => format!("port {} ({name})", port.port),
            None => format!("port {}", port.port),
        };
        let listener = match shares_udp {
            true => "a TCP_UDP listener, which cannot terminate TLS",
            false => "plain TCP: it has no TLS listener",
        };
        ledger.report(
            0,
            Issue::new(
                Rule::Elbv2AcmCertificateRequired,
                format!("{label} of the NLB is {listener}"),
                settings.fix(port, shares_udp),
            ),
        );
    }
    for arn in settings.certificates.iter().filter(|arn| !is_acm_certificate_arn(arn)) {
        ledger.report(
            0,
            Issue::new(
                Rule::Elbv2AcmCertificateRequired,
                format!(
                    "certificate {arn} is {}: the NLB must use an ACM certificate",
                    describe_non_acm(arn)
                ),
                format!("Set `{NLB_SSL_CERT}` to ACM certificate ARNs ({CERTIFICATE_PLACEHOLDER})"),
            ),
        );
    }
    if tls_ports == 0 {
        return ledger;
    }
    ledger.evaluate(Rule::Elbv2PredefinedSecurityPolicySslCheck);
    let (policy_name, defaulted) = match annotation(annotations, NLB_SSL_POLICY) {
        Some(name) => (name, false),
        None => (defaults.ssl_policy.as_str(), true),
    };
    let fix = |recommended: &str| format!("Set `{NLB_SSL_POLICY}: {recommended}` on the Service");
    if let Some(issue) = ssl_policy::judge(policy, policy_name, defaulted, &"the NLB's TLS listeners", &fix) {
        ledger.report(0, issue);
    }
    let now = facts.now();
    for arn in settings.certificates.iter().filter(|arn| is_acm_certificate_arn(arn)) {
        judge_configured(facts, now, arn, &policy.certificate, &mut ledger, 0);
    }
    ledger
}

/// The AWS Load Balancer Controller refuses to build an NLB whose `ssl-ports` lists a port the
/// Service does not have (`*` included), so nothing else is judged of what it would build. Medium,
/// as for a class configuration it refuses: the NLB is left as it was, nothing new exposed.
fn unbuildable(settings: &TlsSettings<'_>, ports: &[&ServicePort]) -> Option<Issue> {
    if settings.in_tree {
        return None;
    }
    let (valid, unused): (Vec<&str>, Vec<&str>) =
        settings.ssl_ports.iter().partition(|entry| ports.iter().any(|port| names(entry, port)));
    if unused.is_empty() {
        return None;
    }
    let remediation = match valid.is_empty() {
        true => format!(
            "Remove `{NLB_SSL_PORTS}` to make every TCP port TLS, or list the TLS ports by name or number"
        ),
        false => format!("Set `{NLB_SSL_PORTS}: \"{}\"`, the ports the Service has", valid.join(",")),
    };
    let message = format!(
        "{NLB_SSL_PORTS} lists {}, which no port of the Service is named or numbered (the AWS Load Balancer \
         Controller reads `*` as a port name); the controller refuses to build the NLB",
        unused.iter().map(|entry| format!("`{entry}`")).collect::<Vec<_>>().join(", ")
    );
    Some(Issue::new(Rule::AlbIngressAnnotationsValid, message, remediation).at(Severity::Medium))
}

#[cfg(test)]
mod tests;
