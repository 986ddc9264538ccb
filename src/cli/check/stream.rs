//! `dpo check` scope by scope, so that memory is bounded by the largest scope and by what the
//! report holds, not by the inputs.
//!
//! A scope's documents resolve against those of its own scope and its ancestors' (see
//! [`Context`]), and against the policies. So the files of ancestor scopes, the files that may
//! hold a policy, and standard input (which can be read once) are read first and kept; every
//! other file is read by the worker judging its scope, and dropped once that scope is judged.
//! Verdicts are keyed by the document's place in the inputs, so the report is the one a run
//! holding every document would write.

use super::scope::{Context, Scope};
use super::{ApplicablePolicies, BuiltIn, Judged, Key, Policies, Settings, Spread, finish, judge};
use crate::api::ResourceRef;
use crate::cli::input::{InputError, Inputs, Item, Listing, Located, read};
use crate::cli::parallel::on_every_core;
use crate::cli::report::{CheckReport, SourceLocation};
use crate::policy::Facts;
use std::collections::{HashMap, HashSet};

/// A `dpo check` run, ready to report.
pub struct Checked {
    pub report: CheckReport,
    /// What could not be read, in input order.
    pub read_errors: Vec<InputError>,
    /// ProtectedSecrets whose spec is unusable, in input order.
    pub spec_errors: Vec<InputError>,
    /// The policies among the inputs, in input order.
    pub input_policies: Vec<(ResourceRef, SourceLocation)>,
}

impl Checked {
    /// A run over inputs read whole (`dpo check --aws`).
    pub fn of(inputs: &Inputs, (report, spec_errors): (CheckReport, Vec<InputError>)) -> Checked {
        Checked {
            report,
            read_errors: inputs.errors.clone(),
            spec_errors,
            input_policies: inputs
                .objects
                .iter()
                .filter_map(|located| Some((located.object.policy()?.0, located.location.clone())))
                .collect(),
        }
    }
}

/// The key of document `ordinal` of item `item`.
fn key(item: usize, ordinal: usize) -> Key {
    ((item as Key) << 32) | ordinal as Key
}

/// The documents of item `item`, keyed.
fn documents_of(item: usize, inputs: &Inputs) -> impl Iterator<Item = (Key, &Located)> {
    inputs.objects.iter().enumerate().map(move |(ordinal, located)| (key(item, ordinal), located))
}

fn item_of(key: Key) -> usize {
    (key >> 32) as usize
}

/// Whether a file's text may hold a policy: every way of writing its kind spells it out.
fn may_hold_a_policy(text: &str) -> bool {
    text.contains("EncryptedVolumePolicy") || text.contains("TlsIngressPolicy")
}

/// Checks every listed source, judging one scope per worker when there are scopes enough to keep
/// every core busy, and every document at once otherwise.
pub fn check_listing(listing: &Listing, settings: Settings<'_>, facts: &(dyn Facts + Sync)) -> Checked {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scopes = Scopes::of(&listing.items, settings.context);
    let by_scope = settings.context != Context::Input && scopes.order.len() >= 2 * cores;
    // A policy written so that the pre-scan missed it would apply to scopes judged before it was
    // read: judged again, holding every document.
    run(listing, &scopes, settings, facts, by_scope).unwrap_or_else(|| {
        run(listing, &scopes, settings, facts, false)
            .expect("a run holding every document meets every policy first")
    })
}

/// The items' scopes: each item's, by index into `order`, and the items of each.
struct Scopes {
    of_item: Vec<usize>,
    order: Vec<Scope>,
    members: Vec<Vec<usize>>,
}

impl Scopes {
    fn of(items: &[Item], context: Context) -> Scopes {
        let mut scopes = Scopes { of_item: Vec::new(), order: Vec::new(), members: Vec::new() };
        let mut position: HashMap<Scope, usize> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            let scope = Scope::of(&item.name(), context);
            let slot = *position.entry(scope.clone()).or_insert_with(|| {
                scopes.order.push(scope);
                scopes.members.push(Vec::new());
                scopes.order.len() - 1
            });
            scopes.of_item.push(slot);
            scopes.members[slot].push(index);
        }
        scopes
    }

    /// The scopes `slot` sees besides its own, nearest first.
    fn ancestors(&self, slot: usize, context: Context) -> Vec<usize> {
        self.order[slot]
            .ancestors(context)
            .filter_map(|up| self.order.iter().position(|scope| *scope == up))
            .collect()
    }
}

/// What a worker hands back for one scope.
struct Outcome {
    judged: Judged,
    /// What was said of the files it read (their objects dropped), by item.
    said: Vec<(usize, Inputs)>,
    /// Whether it read a policy the pre-scan did not see coming.
    met_a_policy: bool,
}

/// One run; `None` when a policy turned up in a file read scope by scope.
fn run(
    listing: &Listing,
    scopes: &Scopes,
    settings: Settings<'_>,
    facts: &(dyn Facts + Sync),
    by_scope: bool,
) -> Option<Checked> {
    let items = &listing.items;
    let ancestors: Vec<Vec<usize>> =
        (0..scopes.order.len()).map(|slot| scopes.ancestors(slot, settings.context)).collect();
    let kept = kept_items(items, scopes, &ancestors, settings, by_scope);
    let first: Vec<usize> = (0..items.len()).filter(|&index| kept[index]).collect();
    let mut resident: Vec<Option<Inputs>> = items.iter().map(|_| None).collect();
    for (index, inputs) in first.iter().zip(on_every_core(&first, |&index| read(&items[index]))) {
        resident[*index] = Some(inputs);
    }
    let built_in = BuiltIn::new();
    let held = resident.iter().enumerate().filter_map(|(item, inputs)| Some((item, inputs.as_ref()?)));
    let policies = ApplicablePolicies::new(
        held.clone().flat_map(|(item, inputs)| documents_of(item, inputs)),
        settings.policies,
        &built_in,
    );

    let judge_scope = |&slot: &usize, spread: Spread| {
        let read_here: HashMap<usize, Inputs> = scopes.members[slot]
            .iter()
            .filter(|&&item| resident[item].is_none())
            .map(|&item| (item, read(&items[item])))
            .collect();
        let mut visible: Vec<usize> = ancestors[slot]
            .iter()
            .flat_map(|&up| &scopes.members[up])
            .chain(&scopes.members[slot])
            .copied()
            .collect();
        visible.sort_unstable();
        let view: Vec<_> = visible
            .iter()
            .flat_map(|&item| {
                let inputs = resident[item].as_ref().or_else(|| read_here.get(&item));
                inputs.into_iter().flat_map(move |inputs| documents_of(item, inputs))
            })
            .collect();
        let judged = judge(
            &view,
            |index| scopes.of_item[item_of(view[index].0)] == slot,
            &policies,
            settings,
            facts,
            spread,
        );
        drop(view);
        let met_a_policy = matches!(settings.policies, Policies::FromInputs)
            && read_here
                .values()
                .flat_map(|inputs| &inputs.objects)
                .any(|located| located.object.policy().is_some());
        let said = read_here
            .into_iter()
            .map(|(item, inputs)| (item, Inputs { objects: Vec::new(), ..inputs }))
            .collect();
        Outcome { judged, said, met_a_policy }
    };
    let slots: Vec<usize> = (0..scopes.order.len()).collect();
    let outcomes: Vec<Outcome> = if by_scope {
        on_every_core(&slots, |slot| judge_scope(slot, Spread::OneCore))
    } else {
        slots.iter().map(|slot| judge_scope(slot, Spread::EveryCore)).collect()
    };
    if outcomes.iter().any(|outcome| outcome.met_a_policy) {
        return None;
    }

    let input_policies = held
        .flat_map(|(_, inputs)| &inputs.objects)
        .filter_map(|located| Some((located.object.policy()?.0, located.location.clone())))
        .collect();
    let mut said: Vec<Option<Inputs>> = items.iter().map(|_| None).collect();
    let mut parts = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        parts.push(outcome.judged);
        for (item, inputs) in outcome.said {
            said[item] = Some(inputs);
        }
    }
    let judged = Judged::concat(parts);
    let mut read_errors = Vec::new();
    let (mut not_judged, mut warnings) = (Vec::new(), Vec::new());
    for inputs in resident.iter().zip(&said).filter_map(|(kept, read)| kept.as_ref().or(read.as_ref())) {
        read_errors.extend(inputs.errors.iter().cloned());
        not_judged.extend(inputs.not_judged.iter().cloned());
        warnings.extend(inputs.warnings.iter().cloned());
    }
    let (report, spec_errors) = finish(judged, &policies, settings, facts, (not_judged, warnings));
    // The process ends with the report: freeing every parsed object one by one would cost a
    // tenth of the run, for memory the exit hands back at once.
    std::mem::forget(resident);
    Some(Checked { report, read_errors, spec_errors, input_policies })
}

/// The items read before any scope is judged: those of scopes others see, those that may hold
/// a policy, and standard input. All of them when scopes are not judged one by one.
fn kept_items(
    items: &[Item],
    scopes: &Scopes,
    ancestors: &[Vec<usize>],
    settings: Settings<'_>,
    by_scope: bool,
) -> Vec<bool> {
    if !by_scope {
        return vec![true; items.len()];
    }
    let seen: HashSet<usize> = ancestors.iter().flatten().copied().collect();
    let may_hold_policies = match settings.policies {
        Policies::FromInputs => {
            on_every_core(items, |item| item.peek().is_some_and(|text| may_hold_a_policy(&text)))
        }
        Policies::Trusted(_) => vec![false; items.len()],
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            matches!(item, Item::Stdin) || seen.contains(&scopes.of_item[index]) || may_hold_policies[index]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::input::{Source, list_sources};
    use crate::cli::output::{OutputFormat, Style, render};
    use crate::policy::ingress::AlbDefaults;
    use std::path::Path;

    /// The JSON report, the errors and the policies of a run, as text to compare.
    fn said(checked: &Checked) -> String {
        let mut out = Vec::new();
        render(&checked.report, OutputFormat::Json, &mut out, Style::default()).expect("rendered");
        let errors = checked.read_errors.iter().chain(&checked.spec_errors);
        let lines: Vec<String> = errors.map(ToString::to_string).collect();
        let policies: Vec<String> = checked.input_policies.iter().map(|(p, l)| format!("{p} {l}")).collect();
        format!("{}\n{}\n{}", String::from_utf8(out).expect("UTF-8"), lines.join("\n"), policies.join("\n"))
    }

    /// Runs over `dir` scope by scope and holding every document; both must say the same.
    fn both_ways(dir: &Path, context: Context) -> (Option<String>, String) {
        let listing = list_sources(&[Source::Path(dir.to_path_buf())], &HashSet::new());
        let alb = AlbDefaults::default();
        let settings = Settings { policies: Policies::FromInputs, context, alb: &alb };
        let scopes = Scopes::of(&listing.items, context);
        let facts = crate::policy::Offline { now: "2026-01-01T00:00:00Z".parse().expect("a timestamp") };
        let mut checked_at = |mut checked: Checked| {
            checked.report.checked_at = facts.now.into();
            said(&checked)
        };
        let by_scope = run(&listing, &scopes, settings, &facts, true).map(&mut checked_at);
        let whole =
            run(&listing, &scopes, settings, &facts, false).map(&mut checked_at).expect("a whole run");
        (by_scope, whole)
    }

    #[test]
    fn the_real_world_corpus_reads_the_same_scope_by_scope() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realworld");
        for context in [Context::Directory, Context::File] {
            let (by_scope, whole) = both_ways(&corpus, context);
            assert!(whole.contains("\"findings\": [\n    {"), "the corpus has findings");
            assert_eq!(by_scope.as_deref(), Some(&*whole), "{context:?}");
        }
    }

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, text).expect("written");
    }

    /// A repository of many examples sharing an IngressClass from a parent, each with an Ingress
    /// of a name repeated in every example, and a policy in one of them (`policy`).
    fn repository(policy: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ingress = |name: &str, class: &str| {
            format!(
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: shop\n  annotations:\n    alb.ingress.kubernetes.io/listen-ports: '[{{\"HTTPS\": 443}}]'\n    alb.ingress.kubernetes.io/certificate-arn: arn:aws:acm:us-east-1:111122223333:certificate/{name}\n    alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06\nspec:\n  ingressClassName: {class}\n  rules:\n    - host: {name}.example.com\n"
            )
        };
        let class = |name: &str| {
            format!(
                "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {name}\nspec:\n  controller: ingress.k8s.aws/alb\n"
            )
        };
        write(dir.path(), "examples/class.yaml", &class("shared"));
        for example in 0..12 {
            write(dir.path(), &format!("examples/e{example:02}/web.yaml"), &ingress("web", "shared"));
            write(
                dir.path(),
                &format!("examples/e{example:02}/own.yaml"),
                &format!("{}---\n{}", class("own"), ingress("api", "own")),
            );
        }
        write(dir.path(), "examples/e07/policy.yaml", policy);
        dir
    }

    #[test]
    fn a_repository_of_examples_reads_the_same_scope_by_scope() {
        let dir = repository(
            "apiVersion: dpo.dev/v1alpha1\nkind: TlsIngressPolicy\nmetadata:\n  name: strict\nspec:\n  requirePostQuantum: true\n",
        );
        let (by_scope, whole) = both_ways(dir.path(), Context::Directory);
        // The policy of one example applies to every other, judged before it or after.
        assert_eq!(whole.matches("post-quantum").count(), 24, "{whole}");
        assert_eq!(by_scope.as_deref(), Some(&*whole));
    }

    #[test]
    fn a_policy_the_pre_scan_missed_has_every_document_judged_again() {
        // JSON, read in full, spells `I` as `\u0049`.
        let dir = repository(
            r#"{"apiVersion": "dpo.dev/v1alpha1", "kind": "Tls\u0049ngressPolicy", "metadata": {"name": "strict"}, "spec": {"requirePostQuantum": true}}"#,
        );
        let (by_scope, whole) = both_ways(dir.path(), Context::Directory);
        assert_eq!(whole.matches("post-quantum").count(), 24, "{whole}");
        assert_eq!(by_scope, None, "judged scope by scope before the policy was read");
        let listing = list_sources(&[Source::Path(dir.path().to_path_buf())], &HashSet::new());
        let alb = AlbDefaults::default();
        let settings = Settings { policies: Policies::FromInputs, context: Context::Directory, alb: &alb };
        let facts = crate::policy::Offline { now: "2026-01-01T00:00:00Z".parse().expect("a timestamp") };
        let mut checked = check_listing(&listing, settings, &facts);
        checked.report.checked_at = facts.now.into();
        assert_eq!(said(&checked), whole);
    }
}
