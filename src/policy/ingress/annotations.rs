//! The AWS Load Balancer Controller annotations this policy reads, parsed the way the controller
//! parses them (`pkg/annotations` and `pkg/ingress` of kubernetes-sigs/aws-load-balancer-controller).

use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub const LISTEN_PORTS: &str = "alb.ingress.kubernetes.io/listen-ports";
pub const CERTIFICATE_ARN: &str = "alb.ingress.kubernetes.io/certificate-arn";
pub const SSL_POLICY: &str = "alb.ingress.kubernetes.io/ssl-policy";
pub const SSL_REDIRECT: &str = "alb.ingress.kubernetes.io/ssl-redirect";
pub const GROUP_NAME: &str = "alb.ingress.kubernetes.io/group.name";
pub const GROUP_ORDER: &str = "alb.ingress.kubernetes.io/group.order";
/// Prefix of `alb.ingress.kubernetes.io/actions.<name>`: custom actions a path can point at.
pub const ACTIONS_PREFIX: &str = "alb.ingress.kubernetes.io/actions.";
/// The deprecated class annotation; the controller gives it precedence over `ingressClassName`.
pub const LEGACY_CLASS: &str = "kubernetes.io/ingress.class";
/// Marks the IngressClass applied to Ingresses created without a class.
pub const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// `spec.controller` of IngressClasses the ALB controller implements.
pub const ALB_CONTROLLER: &str = "ingress.k8s.aws/alb";
/// `spec.controller` of IngressClasses EKS Auto Mode implements.
pub const AUTO_MODE_ALB_CONTROLLER: &str = "eks.amazonaws.com/alb";
pub const SCHEME: &str = "alb.ingress.kubernetes.io/scheme";
pub const WAFV2_ACL_ARN: &str = "alb.ingress.kubernetes.io/wafv2-acl-arn";
pub const WAFV2_ACL_NAME: &str = "alb.ingress.kubernetes.io/wafv2-acl-name";

pub const NLB_TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
pub const NLB_SSL_CERT: &str = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert";
pub const NLB_SSL_PORTS: &str = "service.beta.kubernetes.io/aws-load-balancer-ssl-ports";
pub const NLB_SSL_POLICY: &str = "service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy";
pub const NLB_TCP_UDP_LISTENER: &str = "service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener";
/// `spec.loadBalancerClass` the AWS Load Balancer Controller claims for NLBs.
pub const NLB_LOAD_BALANCER_CLASS: &str = "service.k8s.aws/nlb";
/// `spec.loadBalancerClass` EKS Auto Mode claims, and sets on LoadBalancer Services without one.
pub const AUTO_MODE_NLB_LOAD_BALANCER_CLASS: &str = "eks.amazonaws.com/nlb";

/// Group orders the controller accepts (`minGroupOrder`, `maxGroupOder` in `group_loader.go`).
const GROUP_ORDER_RANGE: std::ops::RangeInclusive<i64> = -1000..=1000;
const MAX_GROUP_NAME_LEN: usize = 63;

/// An annotation value, if set.
pub fn annotation<'a>(annotations: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations?.get(key).map(String::as_str)
}

/// A `stringList` annotation: comma-separated, items trimmed, empty items dropped.
pub fn string_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|item| !item.is_empty())
}

/// Listener protocol of an ALB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Https,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        })
    }
}

/// Parses `listen-ports` (`[{"HTTP": 80}, {"HTTPS": 443}]`) into ports sorted ascending. A port
/// listed twice keeps its last protocol, as the controller's map does.
pub fn parse_listen_ports(raw: &str) -> Result<Vec<(u16, Protocol)>, String> {
    let entries: Vec<HashMap<String, i64>> = serde_json::from_str(raw)
        .map_err(|err| format!("failed to parse listen-ports configuration `{raw}`: {err}"))?;
    if entries.is_empty() {
        return Err(format!("empty listen-ports configuration: `{raw}`"));
    }
    let mut ports: Vec<(u16, Protocol)> = Vec::with_capacity(entries.len());
    for (name, port) in entries.iter().flatten() {
        let port = u16::try_from(*port)
            .ok()
            .filter(|port| *port >= 1)
            .ok_or_else(|| format!("listen port must be within [1, 65535]: {port}"))?;
        let protocol = match name.as_str() {
            "HTTP" => Protocol::Http,
            "HTTPS" => Protocol::Https,
            other => return Err(format!("listen protocol must be within [HTTP, HTTPS]: {other}")),
        };
        match ports.iter_mut().find(|(known, _)| *known == port) {
            Some(entry) => entry.1 = protocol,
            None => ports.push((port, protocol)),
        }
    }
    ports.sort_unstable();
    Ok(ports)
}

/// Parses a port given as a decimal string (`ssl-redirect`, `sslRedirectPort`).
pub fn parse_port(raw: &str) -> Result<u16, String> {
    raw.parse::<u16>()
        .ok()
        .filter(|port| *port >= 1)
        .ok_or_else(|| format!("`{raw}` is not a port number (1-65535)"))
}

/// Parses `group.order`: an integer within [-1000, 1000].
pub fn parse_group_order(raw: &str) -> Result<i64, String> {
    let order = raw.parse::<i64>().map_err(|_| format!("group.order `{raw}` is not an integer"))?;
    if GROUP_ORDER_RANGE.contains(&order) {
        Ok(order)
    } else {
        Err(format!("group.order must be within [-1000, 1000]: {order}"))
    }
}

/// Checks a group name: lower-case alphanumerics, `-` and `.`, starting and ending with an
/// alphanumeric, at most 63 characters.
pub fn validate_group_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let well_formed = bytes.first().is_some_and(alphanumeric)
        && bytes.last().is_some_and(alphanumeric)
        && bytes.iter().all(|b| alphanumeric(b) || *b == b'-' || *b == b'.');
    if !well_formed {
        return Err(format!(
            "group name `{name}` must consist of lower case alphanumeric characters, '-' or '.', and \
             must start and end with an alphanumeric character"
        ));
    }
    if name.len() > MAX_GROUP_NAME_LEN {
        return Err(format!("group name `{name}` must be no more than {MAX_GROUP_NAME_LEN} characters"));
    }
    Ok(())
}

/// Whether an Ingress sends every HTTP request it routes to an HTTPS redirect through custom
/// actions (`actions.<name>` of type `redirect` with protocol `HTTPS`), the way set up before
/// `ssl-redirect` existed: each rule's first path catches everything, and so does the default
/// backend if there is one.
pub fn redirects_all_paths_to_https(ingress: &Ingress) -> bool {
    let Some(spec) = &ingress.spec else { return true };
    let annotations = ingress.metadata.annotations.as_ref();
    let default_backend_redirects =
        spec.default_backend.as_ref().is_none_or(|backend| is_https_redirect(backend, annotations));
    let rules_redirect = spec.rules.iter().flatten().all(|rule| {
        rule.http
            .as_ref()
            .and_then(|http| http.paths.first())
            .is_none_or(|path| is_catch_all(path) && is_https_redirect(&path.backend, annotations))
    });
    default_backend_redirects && rules_redirect
}

/// A path that matches every request: `/*` (taken literally by the controller) or prefix `/`.
fn is_catch_all(path: &HTTPIngressPath) -> bool {
    matches!(
        (path.path_type.as_str(), path.path.as_deref().unwrap_or("/")),
        ("Prefix", "/") | ("ImplementationSpecific" | "", "/*")
    )
}

/// Whether a backend is a custom action (`port.name: use-annotation`) redirecting to HTTPS.
fn is_https_redirect(backend: &IngressBackend, annotations: Option<&BTreeMap<String, String>>) -> bool {
    let Some(service) = &backend.service else { return false };
    let uses_annotation =
        service.port.as_ref().and_then(|port| port.name.as_deref()) == Some("use-annotation");
    // A scan rather than a keyed lookup: it spares building the key, and annotations are few.
    uses_annotation
        && annotations.into_iter().flatten().any(|(key, action)| {
            key.strip_prefix(ACTIONS_PREFIX) == Some(service.name.as_str())
                && action_redirects_to_https(action)
        })
}

/// Whether an action's JSON is a redirect to HTTPS. Keys are matched case-insensitively, as
/// Go's `encoding/json` does (`{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS"}}`
/// is as valid as the lower-case form).
fn action_redirects_to_https(action: &str) -> bool {
    let Ok(serde_json::Value::Object(action)) = serde_json::from_str::<serde_json::Value>(action) else {
        return false;
    };
    fn field<'v>(
        object: &'v serde_json::Map<String, serde_json::Value>,
        key: &str,
    ) -> Option<&'v serde_json::Value> {
        object.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, value)| value)
    }
    let is_redirect = field(&action, "type").is_some_and(|kind| kind == "redirect");
    let protocol = match field(&action, "redirectConfig") {
        Some(serde_json::Value::Object(config)) => field(config, "protocol"),
        _ => None,
    };
    is_redirect && protocol.is_some_and(|protocol| protocol == "HTTPS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ingress::test_support::ingress;

    #[test]
    fn listen_ports_parse_and_sort() {
        let ports = parse_listen_ports(r#"[{"HTTPS": 443}, {"HTTP": 80}, {"HTTP": 8080}]"#).unwrap();
        assert_eq!(ports, vec![(80, Protocol::Http), (443, Protocol::Https), (8080, Protocol::Http)]);
        // One object may carry several entries, and a repeated port keeps the last protocol.
        let ports = parse_listen_ports(r#"[{"HTTP": 80, "HTTPS": 443}, {"HTTPS": 80}]"#).unwrap();
        assert_eq!(ports, vec![(80, Protocol::Https), (443, Protocol::Https)]);
    }

    #[test]
    fn listen_ports_errors_quote_the_problem() {
        let bad_json = parse_listen_ports(r#"[{"HTTP": 80"#).unwrap_err();
        assert!(bad_json.starts_with("failed to parse listen-ports configuration `[{\"HTTP\": 80`: "));
        assert!(parse_listen_ports(r#"[{"HTTP": "80"}]"#).unwrap_err().contains("invalid type"));
        assert_eq!(parse_listen_ports("[]").unwrap_err(), "empty listen-ports configuration: `[]`");
        assert_eq!(
            parse_listen_ports(r#"[{"HTTP": 0}]"#).unwrap_err(),
            "listen port must be within [1, 65535]: 0"
        );
        assert_eq!(
            parse_listen_ports(r#"[{"HTTP": 65536}]"#).unwrap_err(),
            "listen port must be within [1, 65535]: 65536"
        );
        assert_eq!(
            parse_listen_ports(r#"[{"https": 443}]"#).unwrap_err(),
            "listen protocol must be within [HTTP, HTTPS]: https"
        );
    }

    #[test]
    fn string_lists_trim_and_drop_empty_items() {
        assert_eq!(string_list(" a, b ,,c ").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(string_list("").count(), 0);
    }

    #[test]
    fn ports_orders_and_group_names() {
        assert_eq!(parse_port("443"), Ok(443));
        assert!(parse_port("0").is_err());
        assert!(parse_port("https").is_err());
        assert_eq!(parse_group_order("-1000"), Ok(-1000));
        assert!(parse_group_order("1001").is_err());
        assert!(parse_group_order("first").is_err());
        assert!(validate_group_name("team-a.shop").is_ok());
        assert!(validate_group_name("Team").is_err());
        assert!(validate_group_name("shop-").is_err());
        assert!(validate_group_name("").is_err());
        assert!(validate_group_name(&"a".repeat(64)).is_err());
    }

    const REDIRECT_ACTION: &str = r#"
  annotations:
    alb.ingress.kubernetes.io/actions.ssl-redirect: >
      {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}"#;

    fn with_first_path(path: &str, path_type: &str, service: &str) -> Ingress {
        ingress(&format!(
            "metadata:\n  name: web\n  namespace: shop{REDIRECT_ACTION}
spec:
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: {path}
            pathType: {path_type}
            backend: {{service: {{name: {service}, port: {{name: use-annotation}}}}}}
          - path: /
            pathType: Prefix
            backend: {{service: {{name: web, port: {{number: 80}}}}}}"
        ))
    }

    #[test]
    fn legacy_redirect_action_on_catch_all_path() {
        assert!(redirects_all_paths_to_https(&with_first_path(
            "/*",
            "ImplementationSpecific",
            "ssl-redirect"
        )));
        assert!(redirects_all_paths_to_https(&with_first_path("/", "Prefix", "ssl-redirect")));
        // Not a catch-all, or not the redirect action.
        assert!(!redirects_all_paths_to_https(&with_first_path("/", "Exact", "ssl-redirect")));
        assert!(!redirects_all_paths_to_https(&with_first_path("/api", "Prefix", "ssl-redirect")));
        assert!(!redirects_all_paths_to_https(&with_first_path("/*", "ImplementationSpecific", "other")));
    }

    #[test]
    fn redirect_actions_must_target_https() {
        assert!(action_redirects_to_https(r#"{"type":"redirect","redirectConfig":{"protocol":"HTTPS"}}"#));
        assert!(!action_redirects_to_https(r#"{"type":"redirect","redirectConfig":{"protocol":"HTTP"}}"#));
        assert!(!action_redirects_to_https(r#"{"type":"fixed-response"}"#));
        assert!(!action_redirects_to_https("not json"));
    }
}
