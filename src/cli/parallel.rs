//! Work spread over every core, its results in the order of the work whatever the cores.

use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `map` over `items` on every core, a worker taking the next item when it is done with one, so
/// that one large item does not hold the others up; the results in the items' order.
pub fn on_every_core<T: Sync, R: Send>(items: &[T], map: impl Fn(&T) -> R + Sync) -> Vec<R> {
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
}
