//! What a controller asked of kube-apiserver (its own `apiserver_request_total`) and of AWS
//! (through the counting proxy) between two moments, printed by verb and resource, and by
//! operation.

use super::control_plane::{apiserver_requests, grown, is_write};
use super::proxy::Proxy;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Counts of kube-apiserver and of AWS (through the proxy) at one moment.
pub struct Counts {
    pub apiserver: BTreeMap<(String, String), u64>,
    pub aws: HashMap<String, usize>,
    pub batch_bodies: usize,
}

pub async fn counts(client: &kube::Client, proxy: &Proxy) -> Counts {
    let batch_bodies = proxy.bodies("BatchGetSecretValue").len();
    Counts { apiserver: apiserver_requests(client).await, aws: proxy.counts(), batch_bodies }
}

/// Prints what kube-apiserver served and what AWS was asked between `before` and `after`;
/// returns (apiserver writes other than Leases, AWS calls).
pub fn print_counts(title: &str, before: &Counts, after: &Counts) -> (u64, usize) {
    let served = grown(&before.apiserver, &after.apiserver);
    let total: u64 = served.values().sum();
    println!("  kube-apiserver requests, {title} (apiserver_request_total): {total}");
    for ((verb, resource), n) in &served {
        println!("    {verb:<8} {resource:<48} {n:>7}");
    }
    let writes: u64 = served
        .iter()
        .filter(|((verb, resource), _)| is_write(verb) && !resource.ends_with("/leases"))
        .map(|(_, n)| n)
        .sum();
    let mut aws: Vec<(String, usize)> = after
        .aws
        .iter()
        .map(|(op, n)| (op.clone(), n - before.aws.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    aws.sort();
    let calls: usize = aws.iter().map(|(_, n)| n).sum();
    println!("  AWS calls, {title}: {calls}");
    for (op, n) in &aws {
        println!("    {op:<36} {n:>7}");
    }
    (writes, calls)
}

/// Values read between `before` and `after`: GetSecretValue calls and the secret ids of
/// BatchGetSecretValue calls.
pub fn values_read(proxy: &Proxy, before: &Counts, after: &Counts) -> usize {
    let singles = after.aws.get("GetSecretValue").copied().unwrap_or(0)
        - before.aws.get("GetSecretValue").copied().unwrap_or(0);
    let bodies = proxy.bodies("BatchGetSecretValue");
    let batched: usize = bodies[before.batch_bodies..after.batch_bodies]
        .iter()
        .map(|body| {
            let body: Value = serde_json::from_str(body).unwrap_or_default();
            body["SecretIdList"].as_array().map_or(0, Vec::len)
        })
        .sum();
    singles + batched
}
