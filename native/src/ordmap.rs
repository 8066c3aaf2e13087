//! A string-keyed map that remembers insertion order like a Python dict (re-assigning a key keeps
//! its place; removing and re-adding moves it last), so snapshots list entries in the same order.

use std::collections::HashMap;

pub struct OrdMap<V> {
    map: HashMap<String, (u64, V)>,
    next: u64,
}

impl<V> Default for OrdMap<V> {
    fn default() -> Self {
        OrdMap { map: HashMap::new(), next: 0 }
    }
}

impl<V> OrdMap<V> {
    #[inline]
    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key).map(|(_, v)| v)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key).map(|(_, v)| v)
    }

    #[inline]
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// `d[key] = value`
    pub fn insert(&mut self, key: &str, value: V) {
        if let Some(slot) = self.map.get_mut(key) {
            slot.1 = value;
        } else {
            self.map.insert(key.to_owned(), (self.next, value));
            self.next += 1;
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.map.remove(key).map(|(_, v)| v)
    }

    /// Entries in insertion order.
    pub fn ordered(&self) -> Vec<(&str, &V)> {
        let mut all: Vec<(u64, &str, &V)> = self.map.iter().map(|(k, (n, v))| (*n, k.as_str(), v)).collect();
        all.sort_unstable_by_key(|e| e.0);
        all.into_iter().map(|(_, k, v)| (k, v)).collect()
    }
}
