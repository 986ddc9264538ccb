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
/// Service does not have (`*` included); the NLB then serves nothing, so nothing else is judged.
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
mod tests {
    use super::*;
    use crate::policy::ingress::test_support::{evaluate, findings, issued, parse};
    use crate::policy::{FactSet, Offline};

    const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/nlb";

    fn nlb(annotations: &str) -> String {
        format!(
            "kind: Service
metadata:
  name: api
  namespace: shop
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
{annotations}
spec:
  type: LoadBalancer
  ports:
    - {{name: https, port: 443}}
    - {{name: admin, port: 8443, protocol: TCP}}
    - {{name: dns, port: 53, protocol: UDP}}"
        )
    }

    fn verdict_of(yaml: &str, facts: &dyn Facts) -> Verdict {
        let service: Service = parse(yaml);
        let index = InventoryIndex::new(&[], &[], &[]);
        evaluate_service(&TlsIngressPolicySpec::default(), &service, &index, facts, &AlbDefaults::default())
    }

    #[test]
    fn tls_on_every_tcp_port_with_a_good_policy_is_compliant() {
        let yaml = nlb(&format!(
            "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06"
        ));
        let Verdict::Judged(judgement) = verdict_of(&yaml, &Offline { now: jiff::Timestamp::UNIX_EPOCH })
        else {
            panic!("an NLB Service is judged")
        };
        assert!(judgement.findings.is_empty(), "{:?}", judgement.findings);
        assert_eq!(
            judgement.checked,
            [Rule::Elbv2AcmCertificateRequired, Rule::Elbv2PredefinedSecurityPolicySslCheck]
        );
        assert_eq!(
            judgement.skipped,
            [Rule::AcmCertificateStatus, Rule::AcmCertificateExpirationCheck, Rule::AcmCertificateRsaCheck]
        );
    }

    #[test]
    fn ports_left_out_of_ssl_ports_and_default_policy_are_findings() {
        let evaluation = evaluate(
            &nlb(&format!(
                "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: https"
            )),
            &TlsIngressPolicySpec::default(),
            &Offline { now: jiff::Timestamp::UNIX_EPOCH },
        );
        let found = findings(&evaluation);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("port 8443 (admin) of the NLB is plain TCP"));
        assert!(found[0].contains("service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"https,8443\""));
        assert!(found[1].contains(
            "ELBSecurityPolicy-2016-08 (the controller's default, as none is set), which accepts TLS 1.0"
        ));
    }

    #[test]
    fn no_certificate_means_no_tls_and_an_iam_certificate_is_not_acm() {
        let evaluation = evaluate(&nlb(""), &TlsIngressPolicySpec::default(), &FactSet::default());
        let found = findings(&evaluation);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|f| f.starts_with("elbv2-acm-certificate-required")));

        let iam = nlb("    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn:aws:iam::123456789012:server-certificate/api
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06");
        let found = findings(&evaluate(&iam, &TlsIngressPolicySpec::default(), &FactSet::default()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("is an IAM server certificate"));
    }

    fn found_offline(yaml: &str) -> Vec<String> {
        findings(&evaluate(
            yaml,
            &TlsIngressPolicySpec::default(),
            &Offline { now: jiff::Timestamp::UNIX_EPOCH },
        ))
    }

    const GOOD_POLICY: &str = "    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06";

    #[test]
    fn ssl_ports_naming_no_port_of_the_service_make_the_controller_refuse_the_nlb() {
        let star = nlb(&format!(
            "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: '*'
{GOOD_POLICY}"
        ));
        let evaluation = evaluate(&star, &TlsIngressPolicySpec::default(), &FactSet::default());
        let found = findings(&evaluation);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(
            "alb-ingress-annotations-valid shop/api: service.beta.kubernetes.io/aws-load-balancer-ssl-ports lists `*`, \
             which no port of the Service is named or numbered"
        ));
        assert!(found[0].ends_with(
            "=> Remove `service.beta.kubernetes.io/aws-load-balancer-ssl-ports` to make every TCP port TLS, or list \
             the TLS ports by name or number"
        ));
        assert_eq!(evaluation.findings().next().unwrap().severity, Severity::Medium);
        // The NLB is not built: nothing else is judged on it.
        let Verdict::Judged(judgement) = &evaluation.verdicts[0].verdict else { panic!("judged") };
        assert_eq!(judgement.checked, [Rule::AlbIngressAnnotationsValid]);

        let stale = star.replace("ssl-ports: '*'", "ssl-ports: 'https, 9443'");
        let found = found_offline(&stale);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("lists `9443`"), "{found:?}");
        assert!(found[0].ends_with("=> Set `service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"https\"`, the ports the Service has"));
    }

    #[test]
    fn the_in_tree_nlb_reads_a_star_as_every_port() {
        let yaml = nlb(&format!(
            "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: '*'
{GOOD_POLICY}"
        ))
        .replace("aws-load-balancer-type: external", "aws-load-balancer-type: nlb");
        assert_eq!(found_offline(&yaml), Vec::<String>::new());
        // A class makes it the AWS Load Balancer Controller's again.
        let classed = yaml.replace(
            "  type: LoadBalancer",
            "  type: LoadBalancer\n  loadBalancerClass: service.k8s.aws/nlb",
        );
        assert!(found_offline(&classed)[0].starts_with("alb-ingress-annotations-valid"));
    }

    /// An NLB with TCP and UDP on 443 (HTTP/3 next to HTTPS).
    fn quic(annotations: &str) -> String {
        format!(
            "kind: Service
metadata:
  name: api
  namespace: shop
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
{GOOD_POLICY}
{annotations}
spec:
  type: LoadBalancer
  ports:
    - {{name: https, port: 443, protocol: TCP}}
    - {{name: quic, port: 443, protocol: UDP}}"
        )
    }

    #[test]
    fn a_tcp_udp_listener_cannot_terminate_tls_and_ssl_ports_do_not_change_that() {
        let merged = quic(&format!(
            "    service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener: \"true\"
    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"443\""
        ));
        let found = found_offline(&merged);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0],
            "elbv2-acm-certificate-required shop/api: port 443 (https) of the NLB is a TCP_UDP listener, which \
             cannot terminate TLS => Serve UDP on a port number of its own: the TCP and UDP ports 443 make one \
             TCP_UDP listener, which cannot terminate TLS"
        );
        // Without a certificate, moving UDP is not enough.
        let uncertified =
            quic("    service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener: \"true\"");
        let found = found_offline(&uncertified);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with(&format!(
            "cannot terminate TLS; set `service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {CERTIFICATE_PLACEHOLDER}`"
        )));
        // Without the listener merged (the controller's feature gate is off unless enabled), the TCP
        // port is a TLS listener of its own.
        for off in ["", "    service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener: \"false\""]
        {
            let separate =
                quic(&format!("{off}\n    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}"));
            assert_eq!(found_offline(&separate), Vec::<String>::new(), "{off}");
        }
    }

    #[test]
    fn the_remediation_names_every_step_a_port_needs() {
        // No certificate, and ssl-ports lists another port: a certificate alone would leave 8443
        // plaintext.
        let yaml = nlb("    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: https");
        let found = found_offline(&yaml);
        let admin = found.iter().find(|f| f.contains("port 8443 (admin)")).expect("8443 reported");
        assert!(admin.ends_with(&format!(
            "=> Set `service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {CERTIFICATE_PLACEHOLDER}`; add the port \
             to `service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"https,8443\"`"
        )));
        let https = found.iter().find(|f| f.contains("port 443 (https)")).expect("443 reported");
        assert!(https.ends_with(&format!(
            "=> Set `service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {CERTIFICATE_PLACEHOLDER}`"
        )));
    }

    #[test]
    fn certificate_state_is_judged_with_facts() {
        let mut facts = FactSet { now: Some("2025-06-01T00:00:00Z".parse().unwrap()), ..FactSet::default() };
        facts.certificates.insert(
            ARN.into(),
            crate::policy::Fact::Known(issued(ARN, &["api.example.com"], "2025-06-05T00:00:00Z")),
        );
        let yaml = nlb(&format!(
            "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06"
        ));
        let found = findings(&evaluate(&yaml, &TlsIngressPolicySpec::default(), &facts));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("acm-certificate-expiration-check"));
    }

    #[test]
    fn other_services_are_not_applicable() {
        let offline = Offline { now: jiff::Timestamp::UNIX_EPOCH };
        let cluster_ip =
            "kind: Service\nmetadata: {name: db, namespace: shop}\nspec: {ports: [{port: 5432}]}";
        assert_eq!(
            verdict_of(cluster_ip, &offline),
            Verdict::NotApplicable("a ClusterIP Service has no load balancer".into())
        );
        let classic = "kind: Service\nmetadata: {name: web, namespace: shop}\nspec: {type: LoadBalancer}";
        assert!(
            matches!(verdict_of(classic, &offline), Verdict::NotApplicable(reason) if reason.starts_with("not an NLB"))
        );
        let by_class = "kind: Service\nmetadata: {name: web, namespace: shop}
spec: {type: LoadBalancer, loadBalancerClass: service.k8s.aws/nlb, ports: [{port: 80}]}";
        assert!(matches!(verdict_of(by_class, &offline), Verdict::Judged(_)));
        let excluded = TlsIngressPolicySpec { include_services: false, ..TlsIngressPolicySpec::default() };
        let service: Service = parse(by_class);
        let index = InventoryIndex::new(&[], &[], &[]);
        assert!(matches!(
            evaluate_service(&excluded, &service, &index, &offline, &AlbDefaults::default()),
            Verdict::NotApplicable(_)
        ));
    }

    #[test]
    fn post_quantum_and_certificate_keys_apply_to_nlbs() {
        let annotations = |policy: &str| {
            format!(
                "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: {policy}"
            )
        };
        let post_quantum =
            TlsIngressPolicySpec { require_post_quantum: true, ..TlsIngressPolicySpec::default() };
        let mut facts = FactSet { now: Some("2025-06-01T00:00:00Z".parse().unwrap()), ..FactSet::default() };
        let mut certificate = issued(ARN, &["api.example.com"], "2026-06-01T00:00:00Z");
        certificate.key_algorithm = Some("RSA_1024".into());
        facts.certificates.insert(ARN.into(), crate::policy::Fact::Known(certificate));

        let found = findings(&evaluate(
            &nlb(&annotations("ELBSecurityPolicy-TLS13-1-2-2021-06")),
            &post_quantum,
            &facts,
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains(
                "the NLB's TLS listeners uses security policy ELBSecurityPolicy-TLS13-1-2-2021-06, \
             which offers no post-quantum key exchange"
            ),
            "{found:?}"
        );
        assert!(
            found[0].ends_with(
                "Set `service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: \
             ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09` on the Service"
            ),
            "{found:?}"
        );
        assert!(found[1].starts_with("acm-certificate-rsa-check shop/api"), "{found:?}");

        let found = findings(&evaluate(
            &nlb(&annotations("ELBSecurityPolicy-TLS13-1-3-PQ-2025-09")),
            &post_quantum,
            &facts,
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("acm-certificate-rsa-check"), "{found:?}");
    }
}
