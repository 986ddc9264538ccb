//! Where manifests come from: files, directories and stdin, read and parsed on every core, the
//! result in the order of the sources as given (directories in path order) whatever the cores.

use super::{InputError, Inputs, Located, parse_text};
use crate::cli::report::SourceLocation;
use std::collections::HashSet;
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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
enum Item {
    Stdin,
    File(PathBuf),
    Unreadable(InputError),
}

/// Reads every source but the files in `skip` (canonicalised); a bad file is recorded as an
/// error and the rest are still read.
pub fn read_sources(sources: &[Source], skip: &HashSet<PathBuf>) -> Inputs {
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
    let mut inputs = Inputs::default();
    for part in on_every_core(&items, read) {
        inputs.objects.extend(part.objects);
        inputs.errors.extend(part.errors);
        inputs.not_judged.extend(part.not_judged);
        inputs.warnings.extend(part.warnings);
    }
    inputs.files = files;
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

fn read(item: &Item) -> Inputs {
    let mut inputs = Inputs::default();
    let (name, text) = match item {
        Item::Stdin => (SourceLocation::STDIN.to_string(), std::io::read_to_string(std::io::stdin())),
        Item::File(path) => (path.display().to_string(), std::fs::read_to_string(path)),
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

/// `map` over `items` on every core, a worker taking the next item when it is done with one, so
/// that one large file does not hold the others up; the results in the items' order.
fn on_every_core<T: Sync, R: Send>(items: &[T], map: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if workers <= 1 {
        return items.iter().map(map).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let work = || {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { return done };
                done.push((index, map(item)));
            }
        };
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => done.into_iter().for_each(|(index, result)| results[index] = Some(result)),
                Err(cause) => panic::resume_unwind(cause),
            }
        }
    });
    results.into_iter().map(|result| result.expect("every item was taken by a worker")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_on_every_core() {
        let items: Vec<u64> = (0..10_000).collect();
        // Uneven work, so that workers finish out of order.
        let squares = on_every_core(&items, |&n| (0..n % 97).fold(n, |acc, _| acc.wrapping_add(1)) * n);
        assert_eq!(squares, items.iter().map(|&n| (n + n % 97) * n).collect::<Vec<_>>());
        assert!(on_every_core(&[] as &[u8], |&b| b).is_empty());
    }

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
