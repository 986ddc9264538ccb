//! Which documents one evaluation judges, and which others they may resolve against.
//!
//! An Ingress's verdict depends on its IngressClass, its IngressClassParams, the other members of
//! its IngressGroup, the default class and its Namespace. In a repository those may be anywhere,
//! and an IngressClass of one example must not change how another example's Ingress is judged. The
//! [`Context`] bounds the reach; within it, every document is judged where it stands, even when
//! another document has the same kind, namespace and name.

use super::super::input::Located;
use super::super::report::SourceLocation;
use crate::api::ResourceRef;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How far cross-object resolution reaches (`dpo check --context`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Context {
    /// Every input together, as objects applied to one cluster: a rendered chart, one
    /// environment's manifests.
    Input,
    /// A document's own directory and its ancestors: objects in sibling directories (other
    /// examples, other environments) are not seen. Shared objects go in a common parent.
    #[default]
    Directory,
    /// A document's own file.
    File,
}

/// One evaluation: the documents it judges, and those they resolve against without being judged
/// there (each is judged in its own unit). Indices into the inputs, ascending.
#[derive(Debug, PartialEq, Eq)]
pub struct Unit {
    pub judged: Vec<usize>,
    pub context: Vec<usize>,
}

impl Unit {
    /// Every document the evaluation sees, in input order.
    pub fn visible(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.judged.iter().chain(&self.context).copied().collect();
        all.sort_unstable();
        all
    }
}

/// Where a document is resolved, and the scopes it also sees.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    All,
    Stdin,
    Path(PathBuf),
}

impl Scope {
    /// The scope of the documents of `file` (a location's `file`).
    pub fn of(file: &str, context: Context) -> Scope {
        let path = Path::new(file);
        match context {
            Context::Input => Scope::All,
            _ if file == SourceLocation::STDIN => Scope::Stdin,
            Context::File => Scope::Path(path.to_path_buf()),
            Context::Directory => Scope::Path(path.parent().unwrap_or(Path::new("")).to_path_buf()),
        }
    }

    /// The scopes whose documents this one also sees, nearest first.
    pub fn ancestors(&self, context: Context) -> impl Iterator<Item = Scope> {
        let dirs = match (context, self) {
            (Context::Directory, Scope::Path(dir)) => Some(dir.ancestors().skip(1)),
            _ => None,
        };
        dirs.into_iter().flatten().map(|up| Scope::Path(up.to_path_buf()))
    }
}

/// Splits `candidates` (indices into `objects`) into units under `context`, for the scopes that
/// hold a document `judged` picks out. A scope's documents with unique identities are judged in
/// one unit; the second occurrence of an identity in a scope, and the third, are judged in units
/// of their own, seeing the scope's other documents.
pub fn units(
    objects: &[&Located],
    identities: &[ResourceRef],
    candidates: &[usize],
    context: Context,
    judged: &impl Fn(usize) -> bool,
) -> Vec<Unit> {
    let mut scopes: Vec<(Scope, Vec<usize>)> = Vec::new();
    let mut position: HashMap<Scope, usize> = HashMap::new();
    for &index in candidates {
        let scope = Scope::of(&objects[index].location.file, context);
        let slot = *position.entry(scope.clone()).or_insert_with(|| {
            scopes.push((scope, Vec::new()));
            scopes.len() - 1
        });
        scopes[slot].1.push(index);
    }
    let identity = |index: usize| &identities[index];
    let mut units = Vec::new();
    for (scope, members) in &scopes {
        if !members.iter().any(|&index| judged(index)) {
            continue;
        }
        let ancestors: Vec<&[usize]> = scope
            .ancestors(context)
            .filter_map(|up| position.get(&up))
            .map(|&slot| scopes[slot].1.as_slice())
            .collect();
        // Occurrences of each identity, in input order.
        let mut occurrences: Vec<(&ResourceRef, Vec<usize>)> = Vec::new();
        let mut seen: FxHashMap<&ResourceRef, usize> = FxHashMap::default();
        for &index in members {
            let resource = identity(index);
            match seen.get(&resource) {
                Some(&slot) => occurrences[slot].1.push(index),
                None => {
                    seen.insert(resource, occurrences.len());
                    occurrences.push((resource, vec![index]));
                }
            }
        }
        // A nearer document shadows a farther one of the same identity.
        let mut shadowed: FxHashSet<&ResourceRef> = seen.into_keys().collect();
        let mut inherited = Vec::new();
        for &index in ancestors.iter().flat_map(|members| members.iter()) {
            if shadowed.insert(identity(index)) {
                inherited.push(index);
            }
        }
        let layers = occurrences.iter().map(|(_, indices)| indices.len()).max().unwrap_or(0);
        for layer in 0..layers {
            let mut judged = Vec::new();
            let mut context = inherited.clone();
            for (_, indices) in &occurrences {
                match indices.get(layer) {
                    Some(&index) => judged.push(index),
                    None => context.push(indices[0]),
                }
            }
            judged.sort_unstable();
            context.sort_unstable();
            units.push(Unit { judged, context });
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::input::{Inputs, parse_text};

    fn read(files: &[(&str, &str)]) -> Vec<Located> {
        let mut inputs = Inputs::default();
        for (file, text) in files {
            parse_text(file, text, &mut inputs);
        }
        assert!(inputs.errors.is_empty(), "{:?}", inputs.errors);
        inputs.objects
    }

    fn identities(objects: &[&Located]) -> Vec<ResourceRef> {
        objects.iter().map(|located| located.object.resource()).collect()
    }

    fn class(name: &str) -> String {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {name}\nspec:\n  controller: ingress.k8s.aws/alb\n"
        )
    }

    fn names(objects: &[&Located], indices: &[usize]) -> Vec<String> {
        indices
            .iter()
            .map(|&i| format!("{}:{}", objects[i].location.file, objects[i].object.resource().name))
            .collect()
    }

    fn described(objects: &[Located], context: Context) -> Vec<(Vec<String>, Vec<String>)> {
        let all: Vec<usize> = (0..objects.len()).collect();
        let objects: Vec<&Located> = objects.iter().collect();
        units(&objects, &identities(&objects), &all, context, &|_| true)
            .iter()
            .map(|unit| (names(&objects, &unit.judged), names(&objects, &unit.context)))
            .collect()
    }

    #[test]
    fn a_directory_sees_its_ancestors_and_never_its_siblings() {
        let objects = read(&[
            ("repo/shared.yaml", &class("shared")),
            ("repo/a/class.yaml", &class("alb")),
            ("repo/b/class.yaml", &class("other")),
            ("repo/b/deep/class.yaml", &class("deep")),
        ]);
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            described(&objects, Context::Directory),
            [
                (s(&["repo/shared.yaml:shared"]), s(&[])),
                (s(&["repo/a/class.yaml:alb"]), s(&["repo/shared.yaml:shared"])),
                (s(&["repo/b/class.yaml:other"]), s(&["repo/shared.yaml:shared"])),
                (
                    s(&["repo/b/deep/class.yaml:deep"]),
                    s(&["repo/shared.yaml:shared", "repo/b/class.yaml:other"])
                ),
            ]
        );
        assert_eq!(described(&objects, Context::Input).len(), 1);
        assert!(described(&objects, Context::File).iter().all(|(_, context)| context.is_empty()));
    }

    #[test]
    fn every_document_of_a_repeated_identity_is_judged_once_in_a_unit_of_its_own() {
        let objects = read(&[
            ("x/one.yaml", &format!("{}---\n{}", class("alb"), class("public"))),
            ("x/two.yaml", &class("alb")),
            ("x/three.yaml", &class("alb")),
        ]);
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            described(&objects, Context::Input),
            [
                (s(&["x/one.yaml:alb", "x/one.yaml:public"]), s(&[])),
                (s(&["x/two.yaml:alb"]), s(&["x/one.yaml:public"])),
                (s(&["x/three.yaml:alb"]), s(&["x/one.yaml:public"])),
            ]
        );
    }

    #[test]
    fn a_nearer_document_shadows_an_ancestors_of_the_same_identity() {
        let objects = read(&[("top/class.yaml", &class("alb")), ("top/env/class.yaml", &class("alb"))]);
        let objects: Vec<&Located> = objects.iter().collect();
        let deep = units(&objects, &identities(&objects), &[0, 1], Context::Directory, &|_| true);
        assert_eq!(deep[1], Unit { judged: vec![1], context: vec![] });
    }

    #[test]
    fn standard_input_is_a_scope_of_its_own() {
        let objects = read(&[("<stdin>", &class("a")), ("b.yaml", &class("b"))]);
        assert!(described(&objects, Context::Directory).iter().all(|(_, context)| context.is_empty()));
    }
}
