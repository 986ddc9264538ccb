//! Which HTTPRoutes attach to which listeners of a Gateway, as the Gateway API defines it: a
//! `parentRefs` entry names the Gateway (and narrows to a listener by `sectionName` or `port`),
//! the listener allows routes from the route's namespace (`allowedRoutes`, its own namespace
//! unless it says otherwise), and the hostnames of listener and route intersect.

use super::{Gateway, GatewayListener, HTTPRoute, ParentRef};
use crate::policy::ingress::InventoryIndex;
use crate::policy::selector;
use kube::ResourceExt;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A route attached to one listener: `hosts` are the hostnames it serves there.
#[derive(Debug)]
pub(super) struct Attached<'a> {
    pub route: &'a HTTPRoute,
    /// Index of the listener in the Gateway's `spec.listeners`.
    pub listener: usize,
    pub hosts: Vec<String>,
}

/// The routes attached to each listener of `gateway`, each (route, listener) once.
pub(super) fn attached<'a>(
    gateway: &Gateway,
    routes: &[&'a HTTPRoute],
    index: &InventoryIndex<'_>,
) -> Vec<Attached<'a>> {
    let gateway_namespace = gateway.namespace().unwrap_or_else(|| "default".into());
    let mut found: Vec<Attached<'a>> = Vec::new();
    for &route in routes {
        let route_namespace = route.namespace().unwrap_or_else(|| "default".into());
        for parent in parents_naming(route, gateway) {
            for (position, listener) in gateway.spec.listeners.iter().enumerate() {
                let chosen = parent.section_name.as_ref().is_none_or(|name| *name == listener.name)
                    && parent.port.is_none_or(|port| port == listener.port);
                let carries_http = matches!(listener.protocol.as_str(), "HTTP" | "HTTPS");
                if !chosen || !carries_http || !allows(listener, &gateway_namespace, &route_namespace, index)
                {
                    continue;
                }
                let Some(hosts) = hosts(listener.hostname.as_deref(), &route.spec.hostnames) else {
                    continue;
                };
                let seen = found.iter().any(|a| std::ptr::eq(a.route, route) && a.listener == position);
                if !seen {
                    found.push(Attached { route, listener: position, hosts });
                }
            }
        }
    }
    found
}

/// The `parentRefs` of `route` that name `gateway`.
pub(super) fn parents_naming<'r>(
    route: &'r HTTPRoute,
    gateway: &Gateway,
) -> impl Iterator<Item = &'r ParentRef> {
    let route_namespace = route.namespace().unwrap_or_else(|| "default".into());
    let gateway_namespace = gateway.namespace().unwrap_or_else(|| "default".into());
    let name = gateway.name_any();
    route.spec.parent_refs.iter().filter(move |parent| {
        parent.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
            && parent.kind.as_deref().unwrap_or("Gateway") == "Gateway"
            && parent.namespace.as_deref().unwrap_or(&route_namespace) == gateway_namespace
            && parent.name == name
    })
}

/// Whether `listener` accepts routes from `route_namespace` (`allowedRoutes.namespaces.from`:
/// `Same` unless set, `All`, or `Selector` over the Namespace's labels).
fn allows(
    listener: &GatewayListener,
    gateway_namespace: &str,
    route_namespace: &str,
    index: &InventoryIndex<'_>,
) -> bool {
    let namespaces = listener.allowed_routes.as_ref().and_then(|allowed| allowed.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        // A Namespace not among the inputs cannot be shown to match.
        "Selector" => index.namespace(route_namespace).is_some_and(|namespace| {
            let labels = namespace.metadata.labels.as_ref();
            namespaces.and_then(|n| n.selector.as_ref()).is_some_and(|s| selector::matches(Some(s), labels))
        }),
        _ => route_namespace == gateway_namespace,
    }
}

/// The hostnames a route serves on a listener: the intersection of the listener's `hostname`
/// (any, when unset) with the route's `hostnames` (any, when empty); `None` when they do not
/// intersect, so the route does not attach.
fn hosts(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let Some(listener) = listener else { return Some(route.to_vec()) };
    if route.is_empty() {
        return Some(vec![listener.to_string()]);
    }
    let hosts: Vec<String> = route.iter().filter_map(|host| intersection(listener, host)).collect();
    (!hosts.is_empty()).then_some(hosts)
}

/// The more specific of two Gateway API hostnames when one matches the other. A Gateway API
/// wildcard stands for one or more labels (`*.example.com` matches `a.b.example.com`), unlike a
/// certificate's (RFC 6125, one label).
fn intersection(a: &str, b: &str) -> Option<String> {
    let matches = |wildcard: &str, host: &str| {
        wildcard.strip_prefix('*').is_some_and(|suffix| host.len() > suffix.len() && host.ends_with(suffix))
    };
    if a.eq_ignore_ascii_case(b) {
        Some(a.to_string())
    } else if matches(a, b) {
        Some(b.to_string())
    } else if matches(b, a) {
        Some(a.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_intersect_as_the_gateway_api_defines() {
        assert_eq!(intersection("shop.example.com", "shop.example.com").as_deref(), Some("shop.example.com"));
        assert_eq!(intersection("*.example.com", "a.b.example.com").as_deref(), Some("a.b.example.com"));
        assert_eq!(intersection("shop.example.com", "*.example.com").as_deref(), Some("shop.example.com"));
        assert_eq!(
            intersection("*.example.com", "*.shop.example.com").as_deref(),
            Some("*.shop.example.com")
        );
        assert_eq!(intersection("*.example.com", "example.com"), None);
        assert_eq!(intersection("shop.example.com", "web.example.com"), None);
        assert_eq!(hosts(None, &[]), Some(vec![]));
        assert_eq!(hosts(Some("*.example.com"), &[]), Some(vec!["*.example.com".to_string()]));
        assert_eq!(hosts(Some("shop.example.com"), &["web.example.com".into()]), None);
    }
}
