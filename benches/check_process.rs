//! `dpo check` end to end, as a CI job runs it: a generated corpus written to disk first (100,000
//! objects in 1,000 files under `cargo bench`; 2,000 in 20 under `cargo test --benches`), then the
//! `dpo` process over it once per output format. Prints, per format, objects/s of wall time, the
//! process's CPU seconds and peak RSS (from `/usr/bin/time`), and the report's size.

#[path = "../tests/support/corpus.rs"]
mod corpus;

use std::process::{Command, Stdio};

const FORMATS: [&str; 5] = ["json", "text", "sarif", "junit", "policyreport"];

/// What `/usr/bin/time -f "%e %U %S %M"` says of one run.
struct Usage {
    wall_s: f64,
    cpu_s: f64,
    peak_rss_mib: f64,
}

fn run(dir: &std::path::Path, format: &str) -> (Usage, u64) {
    let report = dir.join(format!("report.{format}"));
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%e %U %S %M", env!("CARGO_BIN_EXE_dpo"), "check"])
        .arg(dir.join("manifests"))
        .args(["--output", format, "--fail-on", "critical", "--color", "never"])
        .stdout(std::fs::File::create(&report).expect("the report file is created"))
        .stderr(Stdio::piped())
        .output()
        .expect("/usr/bin/time runs dpo (Debian package `time`)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // dpo exits 1 for the corpus's findings; 2 would be bad input.
    assert!(output.status.code().is_some_and(|code| code < 2), "dpo check -o {format}: {stderr}");
    let figures: Vec<f64> = stderr
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|figure| figure.parse().unwrap_or_else(|_| panic!("not a /usr/bin/time figure: {stderr}")))
        .collect();
    let [wall_s, user, system, rss_kib] = figures[..] else { panic!("four figures expected: {stderr}") };
    let size = std::fs::metadata(&report).map_or(0, |m| m.len());
    (Usage { wall_s, cpu_s: user + system, peak_rss_mib: rss_kib / 1024.0 }, size)
}

fn main() {
    let (objects, files) =
        if std::env::args().any(|a| a == "--bench") { (100_000, 1_000) } else { (2_000, 20) };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let manifests = dir.path().join("manifests");
    let per_file = objects / files;
    for file in 0..files {
        // Ten teams of a hundred files each, as a monorepo lays them out.
        let team = manifests.join(format!("team-{:02}", file % 10));
        std::fs::create_dir_all(&team).expect("a team directory");
        let text = corpus::manifests(file * per_file..(file + 1) * per_file);
        std::fs::write(team.join(format!("app-{file:04}.yaml")), text).expect("a manifest file");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("dpo check over {objects} objects in {files} files, {cores} cores");
    let mut json_usage = None;
    for format in FORMATS {
        let (usage, size) = run(dir.path(), format);
        let relative = json_usage.as_ref().map_or(String::new(), |json: &Usage| {
            format!(
                "  ({:.2}x JSON's time, {:.2}x its memory)",
                usage.wall_s / json.wall_s,
                usage.peak_rss_mib / json.peak_rss_mib
            )
        });
        println!(
            "{format:<13} {:>9.0} objects/s  wall {:.2} s  cpu {:.2} s  peak RSS {:.0} MiB  report {:.1} MiB{relative}",
            objects as f64 / usage.wall_s.max(0.01),
            usage.wall_s,
            usage.cpu_s,
            usage.peak_rss_mib,
            size as f64 / (1024.0 * 1024.0),
        );
        json_usage.get_or_insert(usage);
    }
}
