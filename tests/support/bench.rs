//! What the benchmarks share: their sizes, and what they measure of this process besides time.

/// Peak resident set size so far (`VmHWM`), in KiB; 0 where `/proc` does not tell.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
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
