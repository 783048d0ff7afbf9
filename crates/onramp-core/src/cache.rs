//! A small read-mostly cache for configuration read on the request path.

use std::collections::HashMap;
use std::sync::RwLock;

/// How long configuration read on the request path (instances, signup domains) is believed
/// before it is looked up again. Configuration changes at start; this bounds how long a node
/// takes to see a change made elsewhere.
const CONFIG_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// A read-mostly cache whose entries are believed for a while. Only found values go in.
pub(crate) struct TtlCache<K, V> {
    map: RwLock<HashMap<K, (V, std::time::Instant)>>,
}

impl<K: Eq + std::hash::Hash, V: Clone> TtlCache<K, V> {
    pub(crate) fn new() -> Self {
        Self { map: RwLock::new(HashMap::new()) }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(key).filter(|(_, at)| at.elapsed() < CONFIG_CACHE_TTL).map(|(v, _)| v.clone())
    }

    pub(crate) fn put(&self, key: K, value: V) {
        self.map.write().unwrap_or_else(|e| e.into_inner()).insert(key, (value, std::time::Instant::now()));
    }

    /// Forget `key` at once (this node changed it; other nodes see the change within the TTL).
    pub(crate) fn remove(&self, key: &K) {
        self.map.write().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}
