//! What the benchmarks share: their sizes, and what they measure of a process besides time.

use std::time::Duration;

/// Peak resident set size so far (`VmHWM`) of this process, in KiB; 0 where `/proc` does not
/// tell.
pub fn peak_rss_kib() -> u64 {
    status_kib("self", "VmHWM")
}

/// A `/proc/<process>/status` field in kB (`VmHWM`, `VmRSS`) of `process` (a pid, or `self`);
/// 0 where `/proc` does not tell.
pub fn status_kib(process: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time of `process` (a pid, or `self`) so far, user + system, from `/proc/<process>/stat`
/// in clock ticks of 10 ms (`CLK_TCK` is 100 on Linux).
pub fn cpu_time(process: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    // After the parenthesised name come the state (field 3), ..., utime and stime (14 and 15).
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let mut fields = after_name.split_whitespace().skip(11).map(|f| f.parse::<u64>().unwrap_or(0));
    let ticks = fields.next().unwrap_or(0) + fields.next().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// How large a ProtectedSecret benchmark runs: objects over AWS secrets, for so many rounds.
pub struct Sizes {
    pub objects: usize,
    pub secrets: usize,
    pub rounds: usize,
}

impl Sizes {
    /// `full` for the measured run under `cargo bench`, `smoke` under `cargo test --benches`
    /// (which does not pass `--bench`).
    pub fn pick(full: Sizes, smoke: Sizes) -> Sizes {
        if std::env::args().any(|a| a == "--bench") { full } else { smoke }
    }
}
