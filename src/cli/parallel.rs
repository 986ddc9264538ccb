//! Work spread over every core, its results in the order of the work whatever the cores.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, mpsc};

/// `map` over `items` on every core, a worker taking the next item when it is done with one, so
/// that one large item does not hold the others up; the results in the items' order.
pub fn on_every_core<T: Sync, R: Send>(items: &[T], map: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = cores().min(items.len());
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

/// A poisoned lock is a worker that panicked, which the scope re-raises: its data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many pieces ahead of the one being written a worker may render: enough to keep every
/// core busy, few enough that a report is never held whole.
const PIECES_AHEAD_PER_CORE: usize = 2;

/// Writes what `render` makes of each of `pieces` to `out`, in order: the pieces rendered on
/// every core while those before them are written, a few at a time.
pub fn write_on_every_core<T: Sync>(
    pieces: &[T],
    out: &mut dyn Write,
    render: impl Fn(&T, &mut Vec<u8>) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let workers = cores().min(pieces.len());
    if workers <= 1 {
        let mut buffer = Vec::new();
        for piece in pieces {
            buffer.clear();
            render(piece, &mut buffer)?;
            out.write_all(&buffer)?;
        }
        return Ok(());
    }
    let ahead = workers * PIECES_AHEAD_PER_CORE;
    // The next piece to render, and the number written: a worker waits while it is too far ahead.
    let progress = (Mutex::new((0usize, 0usize)), Condvar::new());
    let (sender, rendered) = mpsc::sync_channel::<(usize, io::Result<Vec<u8>>)>(ahead);
    // Buffers written go back to the workers: large ones, allocated afresh, would cost a page
    // fault per page.
    let spare = Mutex::new(Vec::<Vec<u8>>::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (sender, progress, render, spare) = (sender.clone(), &progress, &render, &spare);
            scope.spawn(move || {
                loop {
                    let index = {
                        let mut state = lock(&progress.0);
                        while state.0 < pieces.len() && state.0 >= state.1 + ahead {
                            state = progress.1.wait(state).unwrap_or_else(PoisonError::into_inner);
                        }
                        state.0 += 1;
                        state.0 - 1
                    };
                    let Some(piece) = pieces.get(index) else { return };
                    let mut buffer = lock(spare).pop().unwrap_or_default();
                    let result = render(piece, &mut buffer).map(|()| buffer);
                    // The writer gone means it failed: nothing more is wanted.
                    if sender.send((index, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let written = write_in_order(rendered, pieces.len(), out, |written, mut buffer| {
            buffer.clear();
            lock(&spare).push(buffer);
            lock(&progress.0).1 = written;
            progress.1.notify_all();
        });
        if written.is_err() {
            // Release the workers waiting for a turn that will not come.
            lock(&progress.0).0 = pieces.len();
            progress.1.notify_all();
        }
        written
    })
}

/// Writes the pieces `rendered` sends, in the order of their index, handing `wrote` the number
/// written and the buffer of the last after each.
fn write_in_order(
    rendered: mpsc::Receiver<(usize, io::Result<Vec<u8>>)>,
    count: usize,
    out: &mut dyn Write,
    wrote: impl Fn(usize, Vec<u8>),
) -> io::Result<()> {
    let mut waiting = BTreeMap::new();
    let mut written = 0;
    while written < count {
        let Ok((index, piece)) = rendered.recv() else {
            return Err(io::Error::other("a worker stopped before rendering its piece"));
        };
        waiting.insert(index, piece);
        while let Some(piece) = waiting.remove(&written) {
            let piece = piece?;
            out.write_all(&piece)?;
            written += 1;
            wrote(written, piece);
        }
    }
    Ok(())
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
    fn pieces_are_written_in_their_order_on_every_core() {
        let pieces: Vec<u32> = (0..5_000).collect();
        let mut out = Vec::new();
        write_on_every_core(&pieces, &mut out, |&n, buffer| {
            // Uneven work, so that pieces are rendered out of order.
            std::thread::sleep(std::time::Duration::from_micros(u64::from(n % 7) * 20));
            writeln!(buffer, "{n}")
        })
        .unwrap();
        let expected: String = pieces.iter().map(|n| format!("{n}\n")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn a_failing_piece_stops_the_writing_with_its_error() {
        let pieces: Vec<u32> = (0..1_000).collect();
        let mut out = Vec::new();
        let failed = write_on_every_core(&pieces, &mut out, |&n, buffer| {
            if n == 500 {
                return Err(io::Error::other("piece 500"));
            }
            writeln!(buffer, "{n}")
        });
        assert_eq!(failed.unwrap_err().to_string(), "piece 500");
        let expected: String = (0..500).map(|n| format!("{n}\n")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected, "every piece before it, and none after");
    }
}
