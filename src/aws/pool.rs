//! A map of things that are cheap to build again (SDK clients, role credentials): bounded in
//! count, and forgetting what nobody used for a while, so tenants that come and go, or name
//! many regions and roles, do not grow the operator.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Pool<K, V> {
    capacity: usize,
    idle: Duration,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    value: V,
    used: Instant,
}

impl<K: Eq + Hash + Clone, V: Clone> Pool<K, V> {
    /// Holds at most `capacity` entries (at least one), each until unused for `idle`.
    pub fn new(capacity: usize, idle: Duration) -> Self {
        Self { capacity: capacity.max(1), idle, entries: Mutex::default() }
    }

    /// The value for `key`, built with `make` when missing.
    pub fn get(&self, key: &K, make: impl FnOnce() -> V) -> V {
        self.get_at(key, Instant::now(), make)
    }

    fn get_at(&self, key: &K, now: Instant, make: impl FnOnce() -> V) -> V {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(key) {
            entry.used = now;
            return entry.value.clone();
        }
        // Only a new entry can grow the map, so this is where it shrinks.
        entries.retain(|_, entry| now.saturating_duration_since(entry.used) < self.idle);
        if entries.len() >= self.capacity
            && let Some(oldest) = entries.iter().min_by_key(|(_, entry)| entry.used).map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        let value = make();
        entries.insert(key.clone(), Entry { value: value.clone(), used: now });
        value
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().map(|entries| entries.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_keeps_what_is_used_and_drops_the_idle_and_the_least_recently_used() {
        let pool = Pool::new(3, Duration::from_secs(60));
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut built = 0;
        let mut get = |key: &str, secs| {
            pool.get_at(&key.to_string(), at(secs), || {
                built += 1;
                format!("{key}-{built}")
            })
        };
        assert_eq!(get("a", 0), "a-1");
        assert_eq!(get("a", 50), "a-1", "reused, and its use counts");
        assert_eq!(get("b", 1), "b-2");
        assert_eq!(get("c", 2), "c-3");
        // Full: the least recently used (b) makes room.
        assert_eq!(get("d", 3), "d-4");
        assert_eq!(get("a", 4), "a-1");
        assert_eq!(get("c", 5), "c-3");
        assert_eq!(get("b", 6), "b-5", "b was dropped and is built again");
        // Unused for a minute: every entry but the one asked for goes.
        assert_eq!(get("e", 200), "e-6");
        assert_eq!(pool.len(), 1);
    }
}
