//! The back-off between deletions of failed daemon pods on one node. A node whose pods keep
//! failing (a kubelet that rejects them, say) would otherwise see a pod created and deleted
//! in a hot loop; as in kube's DaemonSet controller, the wait starts at one second, doubles
//! with each failed pod up to fifteen minutes, and is forgotten after twice that long
//! without failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INITIAL: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(15 * 60);

struct Entry {
    delay: Duration,
    last: Instant,
}

/// Back-off by key (a DaemonSet's uid and a node's name).
#[derive(Default)]
pub struct Backoff {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Backoff {
    /// How much longer `key` waits, if it is still backing off at `now`.
    pub fn remaining(&self, key: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap();
        let entry = entries.get(key)?;
        let since = now.saturating_duration_since(entry.last);
        (since < entry.delay).then(|| entry.delay - since)
    }

    /// A failed pod is being deleted now: the next one waits longer.
    pub fn step(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|_, e| now.saturating_duration_since(e.last) <= 2 * MAX);
        let delay = match entries.get(key) {
            Some(e) => (e.delay * 2).min(MAX),
            None => INITIAL,
        };
        entries.insert(key.to_string(), Entry { delay, last: now });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_expire() {
        let b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.remaining("k", t0), None);
        b.step("k", t0);
        assert_eq!(b.remaining("k", t0), Some(INITIAL));
        assert_eq!(b.remaining("k", t0 + INITIAL), None);
        b.step("k", t0 + INITIAL);
        assert_eq!(b.remaining("k", t0 + INITIAL), Some(2 * INITIAL));
        // Long quiet: it starts over.
        let later = t0 + 3 * MAX;
        b.step("k", later);
        assert_eq!(b.remaining("k", later), Some(INITIAL));
    }
}
