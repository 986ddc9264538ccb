//! What a controller asked of kube-apiserver (its own `apiserver_request_total`) and of AWS
//! (through the counting proxy) between two moments, printed by verb and resource, and by
//! operation, and the CPU time the processes serving it used meanwhile.

use super::bench::cpu_time;
use super::control_plane::{apiserver_requests, grown, is_write};
use super::proxy::Proxy;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The processes that serve a controller, by `/proc/<pid>/comm` (at most 15 characters).
const SERVERS: [&str; 4] = ["kube-apiserver", "etcd", "kube-controller", "moto_server"];

/// Counts of kube-apiserver and of AWS (through the proxy) at one moment.
pub struct Counts {
    pub apiserver: BTreeMap<(String, String), u64>,
    pub aws: HashMap<String, usize>,
    pub batch_bodies: usize,
    /// CPU time so far of each of [`SERVERS`] running.
    pub cpu: BTreeMap<&'static str, Duration>,
}

pub async fn counts(client: &kube::Client, proxy: &Proxy) -> Counts {
    let batch_bodies = proxy.bodies("BatchGetSecretValue").len();
    Counts {
        apiserver: apiserver_requests(client).await,
        aws: proxy.counts(),
        batch_bodies,
        cpu: servers_cpu(),
    }
}

fn servers_cpu() -> BTreeMap<&'static str, Duration> {
    let mut cpu = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if let Some(server) = SERVERS.iter().find(|s| **s == comm.trim_end()) {
            *cpu.entry(*server).or_default() += cpu_time(&pid);
        }
    }
    cpu
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
    let used: Vec<String> = after
        .cpu
        .iter()
        .map(|(server, t)| {
            let spent = t.saturating_sub(before.cpu.get(server).copied().unwrap_or_default());
            format!("{server} {:.1} s", spent.as_secs_f64())
        })
        .collect();
    println!("  CPU of the servers, {title}: {}", used.join(", "));
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
