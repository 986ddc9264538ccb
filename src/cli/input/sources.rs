//! Where manifests come from: files, directories and stdin, read and parsed on every core, the
//! result in the order of the sources as given (directories in path order) whatever the cores.

use super::{InputError, Inputs, Located, parse_text};
use crate::cli::parallel::on_every_core;
use crate::cli::report::SourceLocation;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    Path(PathBuf),
}

impl Source {
    pub fn parse(arg: &str) -> Source {
        if arg == "-" { Source::Stdin } else { Source::Path(PathBuf::from(arg)) }
    }
}

/// One thing to read, in the order the report lists it.
pub enum Item {
    Stdin,
    File(PathBuf),
    Unreadable(InputError),
}

impl Item {
    /// The `file` its documents are located by.
    pub fn name(&self) -> String {
        match self {
            Item::Stdin => SourceLocation::STDIN.to_string(),
            Item::File(path) => path.display().to_string(),
            Item::Unreadable(error) => error.location.file.to_string(),
        }
    }

    /// Its text; `None` for standard input, which can be read only once, and what cannot be read.
    pub fn peek(&self) -> Option<String> {
        match self {
            Item::File(path) => std::fs::read_to_string(path).ok(),
            Item::Stdin | Item::Unreadable(_) => None,
        }
    }
}

/// The sources, listed and not yet read.
pub struct Listing {
    /// What to read, in the order the report lists it: sources as given, directories in path order.
    pub items: Vec<Item>,
    /// The files among them, canonicalised.
    pub files: HashSet<PathBuf>,
}

/// Lists every source but the files in `skip` (canonicalised); what cannot be listed is an item
/// that reads as its error.
pub fn list_sources(sources: &[Source], skip: &HashSet<PathBuf>) -> Listing {
    let mut items = Vec::new();
    let mut files = HashSet::new();
    for source in sources {
        match source {
            Source::Stdin => items.push(Item::Stdin),
            Source::Path(path) => list(path, &mut items),
        }
    }
    items.retain(|item| match item {
        Item::File(path) => match path.canonicalize() {
            Ok(canonical) if skip.contains(&canonical) => false,
            Ok(canonical) => {
                files.insert(canonical);
                true
            }
            Err(_) => true,
        },
        _ => true,
    });
    Listing { items, files }
}

/// Reads every source but the files in `skip` (canonicalised); a bad file is recorded as an
/// error and the rest are still read.
pub fn read_sources(sources: &[Source], skip: &HashSet<PathBuf>) -> Inputs {
    let listing = list_sources(sources, skip);
    let mut inputs = Inputs::default();
    for part in on_every_core(&listing.items, read) {
        inputs.objects.extend(part.objects);
        inputs.errors.extend(part.errors);
        inputs.not_judged.extend(part.not_judged);
        inputs.warnings.extend(part.warnings);
    }
    inputs.files = listing.files;
    inputs
}

/// Reads `--policy` sources: policies only, anything else `dpo check` reads is an error there.
pub fn read_policies(sources: &[Source]) -> Inputs {
    let mut inputs = read_sources(sources, &HashSet::new());
    let (policies, others): (Vec<Located>, Vec<Located>) = std::mem::take(&mut inputs.objects)
        .into_iter()
        .partition(|located| located.object.policy().is_some());
    inputs.objects = policies;
    inputs.errors.extend(others.into_iter().map(|located| {
        let resource = located.object.resource();
        InputError {
            location: located.location,
            message: format!(
                "{} {} is not a policy: --policy files hold EncryptedVolumePolicy and TlsIngressPolicy objects; pass this file as an input to check it",
                resource.kind, resource.name
            ),
        }
    }));
    inputs
}

fn file_error(file: &str, message: String) -> InputError {
    InputError { location: SourceLocation { file: file.into(), line: 1, document: 0 }, message }
}

fn list(path: &Path, items: &mut Vec<Item>) {
    let display = path.display().to_string();
    if path.is_dir() {
        match manifest_files(path) {
            Ok(files) => items.extend(files.into_iter().map(Item::File)),
            Err(e) => {
                items.push(Item::Unreadable(file_error(&display, format!("cannot list directory: {e}"))))
            }
        }
    } else if path.exists() {
        items.push(Item::File(path.to_path_buf()));
    } else {
        items.push(Item::Unreadable(file_error(&display, "no such file or directory".to_string())));
    }
}

/// Reads and parses one item.
pub fn read(item: &Item) -> Inputs {
    let mut inputs = Inputs::default();
    let name = item.name();
    let text = match item {
        Item::Stdin => std::io::read_to_string(std::io::stdin()),
        Item::File(path) => std::fs::read_to_string(path),
        Item::Unreadable(error) => {
            inputs.errors.push(error.clone());
            return inputs;
        }
    };
    match text {
        Ok(text) => parse_text(&name, &text, &mut inputs),
        Err(e) => inputs.errors.push(file_error(&name, format!("cannot read: {e}"))),
    }
    inputs
}

/// `*.yaml`, `*.yml` and `*.json` below `dir`, recursively, in a stable order.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_read_in_path_order_and_skipped_files_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let class = |name: &str| {
            format!(
                "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\nprovisioner: x\n"
            )
        };
        for (path, name) in
            [("b/two.yaml", "two"), ("a/one.yml", "one"), ("c.json", "three"), ("skip.yaml", "skip")]
        {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, class(name)).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let skip = HashSet::from([dir.path().join("skip.yaml").canonicalize().unwrap()]);
        let inputs = read_sources(&[Source::Path(dir.path().to_path_buf())], &skip);
        let names: Vec<String> =
            inputs.objects.iter().map(|o| o.object.resource().name.to_string()).collect();
        assert_eq!(names, ["one", "two", "three"]);
        assert_eq!(inputs.files.len(), 3);
    }
}
