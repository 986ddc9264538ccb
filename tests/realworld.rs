//! `dpo check` on the real-world corpus of `tests/fixtures/realworld`: a few hundred documents
//! copied verbatim from public repositories (SOURCES.md names each one's origin), judged once as a
//! whole tree and once file by file, against the verdicts of `realworld-expected.yaml`, which were checked by
//! hand against what the AWS Load Balancer Controller and the EBS CSI driver do.
//!
//! Each entry of `realworld-expected.yaml` names a document by file and 0-based `documentIndex`. The findings,
//! `notJudged` and `inputErrors` items of the JSON report that point at that document must be
//! exactly the expected ones: `findings` → these rule ids and nothing else, `not-judged` → listed in
//! `notJudged`, `input-error` → listed in `inputErrors`, `compliant` / `not-applicable` → nothing. A
//! document of the tree without an entry must get nothing either. An entry with `dependsOn` needs
//! objects of other files (an IngressGroup's other members, a GatewayClass): it is only checked in
//! the whole-tree run; every other one must get the same verdict alone.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The corpus, relative to the crate root, as passed to `dpo check` (so that the report's `file`
/// fields start with it).
const TREE: &str = "tests/fixtures/realworld";
/// The verdicts, beside the tree so that `dpo check` does not read them as a manifest.
const EXPECTED: &str = "tests/fixtures/realworld-expected.yaml";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expected {
    file: String,
    document_index: usize,
    kind: Option<String>,
    name: Option<String>,
    verdict: Verdict,
    #[serde(default)]
    rules: BTreeSet<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    why: String,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    Findings,
    Compliant,
    NotApplicable,
    NotJudged,
    InputError,
}

/// What one run said about one document.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Observed {
    rules: BTreeSet<String>,
    not_judged: bool,
    input_error: bool,
}

impl Expected {
    fn key(&self) -> Key {
        (self.file.clone(), self.document_index)
    }

    fn wanted(&self) -> Observed {
        Observed {
            rules: if self.verdict == Verdict::Findings { self.rules.clone() } else { BTreeSet::new() },
            not_judged: self.verdict == Verdict::NotJudged,
            input_error: self.verdict == Verdict::InputError,
        }
    }

    fn describe(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("document");
        let name = self.name.as_deref().unwrap_or("-");
        format!("{}#{} {kind} {name}", self.file, self.document_index)
    }
}

/// A document: its file relative to [`TREE`], and its index in the file.
type Key = (String, usize);

fn expected() -> Vec<Expected> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED);
    let text = std::fs::read_to_string(&path).expect("the expected verdicts are readable");
    let entries: Vec<Expected> = serde_yaml::from_str(&text).expect("the expected verdicts parse");
    let mut seen = BTreeSet::new();
    for entry in &entries {
        assert!(seen.insert(entry.key()), "{} is listed twice", entry.describe());
        assert!(!entry.why.is_empty(), "{} says no why", entry.describe());
        assert_eq!(entry.rules.is_empty(), entry.verdict != Verdict::Findings, "{}", entry.describe());
        for other in &entry.depends_on {
            assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(TREE).join(other).is_file(), "{other}");
        }
    }
    entries
}

/// Runs `dpo check PATH --output json` from the crate root. Input errors (exit 2) are part of the
/// corpus, so `--keep-going` has the rest checked and reported.
fn dpo_check(path: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_dpo"))
        .args(["check", path, "--output", "json", "--keep-going", "--color", "never"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("dpo runs");
    assert!(
        matches!(output.status.code(), Some(0..=2)),
        "dpo check {path} exited with {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("dpo check {path}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// The document a report item points at; `None` for items outside the tree (the built-in
/// policies judge themselves at `<built-in>`).
fn key_of(item: &serde_json::Value) -> Option<Key> {
    let file = item["file"].as_str().unwrap_or_else(|| panic!("no file in {item}"));
    let below = file.strip_prefix(TREE)?.trim_start_matches('/');
    let index = item["documentIndex"].as_u64().unwrap_or_else(|| panic!("no documentIndex in {item}"));
    Some((below.to_string(), index as usize))
}

/// What a report says about each document of the tree.
fn observe(report: &serde_json::Value) -> BTreeMap<Key, Observed> {
    let mut observed: BTreeMap<Key, Observed> = BTreeMap::new();
    let items =
        |field: &str| report[field].as_array().cloned().unwrap_or_else(|| panic!("no {field}: {report}"));
    for finding in items("findings") {
        if let Some(key) = key_of(&finding) {
            let rule = finding["rule"].as_str().expect("a finding names its rule").to_string();
            observed.entry(key).or_default().rules.insert(rule);
        }
    }
    for item in items("notJudged") {
        if let Some(key) = key_of(&item) {
            observed.entry(key).or_default().not_judged = true;
        }
    }
    for item in items("inputErrors") {
        if let Some(key) = key_of(&item) {
            observed.entry(key).or_default().input_error = true;
        }
    }
    observed
}

/// Mismatches between a run and the entries it is held to. `files`: the files the run read, so
/// that any other document of them that got something is reported too.
fn compare<'e>(
    run: &str,
    observed: &BTreeMap<Key, Observed>,
    entries: impl IntoIterator<Item = &'e Expected>,
    files: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for entry in entries {
        listed.insert(entry.key());
        let got = observed.get(&entry.key()).cloned().unwrap_or_default();
        if got != entry.wanted() {
            problems.push(format!(
                "{run}: {}: expected {:?} {:?}, got {got:?} (why: {})",
                entry.describe(),
                entry.verdict,
                entry.rules,
                entry.why
            ));
        }
    }
    for (key, got) in observed {
        if files.contains(&key.0) && !listed.contains(key) && *got != Observed::default() {
            problems.push(format!("{run}: {}#{}: nothing expected, got {got:?}", key.0, key.1));
        }
    }
    problems
}

/// Every manifest file of the tree, relative to it, as `dpo check` reads a directory.
fn corpus_files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, files: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("the corpus is readable") {
            let path: PathBuf = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, root, files);
            } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json") {
                files.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(TREE);
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    files
}

fn fail_on(problems: Vec<String>) {
    assert!(problems.is_empty(), "{} mismatches:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_whole_tree_gets_the_expected_verdicts() {
    let entries = expected();
    let observed = observe(&dpo_check(TREE));
    let files: BTreeSet<String> = corpus_files().into_iter().collect();
    fail_on(compare("whole tree", &observed, &entries, &files));
}

#[test]
fn each_file_alone_gets_the_verdicts_of_the_whole_tree() {
    let entries = expected();
    let whole = observe(&dpo_check(TREE));
    let mut problems = Vec::new();
    for file in corpus_files() {
        let run = format!("{file} alone");
        let observed = observe(&dpo_check(&format!("{TREE}/{file}")));
        let own: Vec<&Expected> =
            entries.iter().filter(|e| e.file == file && e.depends_on.is_empty()).collect();
        // Documents whose verdict needs other files are left out of this run's comparison.
        let borrowed: BTreeSet<Key> = entries
            .iter()
            .filter(|e| e.file == file && !e.depends_on.is_empty())
            .map(Expected::key)
            .collect();
        let observed: BTreeMap<Key, Observed> =
            observed.into_iter().filter(|(key, _)| !borrowed.contains(key)).collect();
        problems.extend(compare(&run, &observed, own.iter().copied(), &BTreeSet::from([file.clone()])));
        for entry in own {
            let alone = observed.get(&entry.key()).cloned().unwrap_or_default();
            let together = whole.get(&entry.key()).cloned().unwrap_or_default();
            if alone != together {
                problems
                    .push(format!("{run}: {}: {alone:?} alone, {together:?} in the tree", entry.describe()));
            }
        }
    }
    fail_on(problems);
}

#[test]
fn every_corpus_file_names_its_source() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TREE).join("SOURCES.md");
    let sources = std::fs::read_to_string(path).expect("SOURCES.md is readable");
    let unlisted: Vec<String> =
        corpus_files().into_iter().filter(|file| !sources.contains(&format!("| `{file}` |"))).collect();
    assert!(unlisted.is_empty(), "not in SOURCES.md: {unlisted:?}");
    let entries = expected();
    let documents: BTreeSet<&str> = entries.iter().map(|e| e.file.as_str()).collect();
    for file in documents {
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(TREE).join(file).is_file(), "{file}");
    }
}
