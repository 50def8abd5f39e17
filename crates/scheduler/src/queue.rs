//! The scheduling queue, as kube-scheduler keeps it. Active pods wait highest priority
//! first, oldest first within a priority. A pod that fits nowhere is set aside as
//! unschedulable until a cluster event may let it fit (or five minutes pass); it then
//! returns through the backoff queue, where it waits 1 s doubling per failed attempt up to
//! 10 s, so that a pod failing again and again does not crowd out the others.

use k8s_openapi::api::core::v1::Pod;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Key = (Reverse<i32>, i64, String);

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a pod stays set aside without any event before it is tried again.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Queue {
    active: BTreeMap<Key, Arc<Pod>>,
    /// Each active pod's key, by uid.
    keys: HashMap<String, Key>,
    /// Pods waiting out their backoff, by when it ends.
    backoff: BTreeMap<(Instant, String), Arc<Pod>>,
    backoff_until: HashMap<String, Instant>,
    /// Pods that fit nowhere, with when they were set aside and whether other pods being
    /// placed may let them fit (they were refused for affinity or spread).
    unschedulable: HashMap<String, (Arc<Pod>, Instant, bool)>,
    /// Failed attempts per pod, for its backoff.
    attempts: HashMap<String, u32>,
}

fn key(pod: &Pod) -> Key {
    let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(0);
    (Reverse(priority), created, pod.metadata.uid.clone().unwrap_or_default())
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

impl Queue {
    /// Queues a pod, or refreshes it wherever it waits.
    pub fn add(&mut self, pod: Arc<Pod>) {
        let uid = uid(&pod);
        if let Some((waiting, _, _)) = self.unschedulable.get_mut(&uid) {
            *waiting = pod;
            return;
        }
        if let Some(until) = self.backoff_until.get(&uid) {
            self.backoff.insert((*until, uid), pod);
            return;
        }
        let key = key(&pod);
        if let Some(old) = self.keys.insert(uid, key.clone()) {
            self.active.remove(&old);
        }
        self.active.insert(key, pod);
    }

    /// The next pod to schedule, once any backoff that ended has been taken in.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<Pod>> {
        while let Some(entry) = self.backoff.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let pod = entry.remove();
            self.backoff_until.remove(&uid(&pod));
            self.add(pod);
        }
        let (_, pod) = self.active.pop_first()?;
        self.keys.remove(pod.metadata.uid.as_deref().unwrap_or_default());
        Some(pod)
    }

    /// When the next backoff ends, if any pod is backing off.
    pub fn next_backoff_end(&self) -> Option<Instant> {
        self.backoff.first_key_value().map(|((at, _), _)| *at)
    }

    pub fn remove(&mut self, uid: &str) {
        if let Some(key) = self.keys.remove(uid) {
            self.active.remove(&key);
        }
        if let Some(until) = self.backoff_until.remove(uid) {
            self.backoff.remove(&(until, uid.to_string()));
        }
        self.unschedulable.remove(uid);
        self.attempts.remove(uid);
    }

    fn backoff_for(&self, uid: &str) -> Duration {
        let attempts = self.attempts.get(uid).copied().unwrap_or(1).max(1);
        INITIAL_BACKOFF.saturating_mul(1 << (attempts - 1).min(10)).min(MAX_BACKOFF)
    }

    /// The pod fit nowhere: set it aside until the cluster changes.
    pub fn set_aside(&mut self, pod: Arc<Pod>, now: Instant, waits_for_pods: bool) {
        let uid = uid(&pod);
        *self.attempts.entry(uid.clone()).or_default() += 1;
        self.unschedulable.insert(uid, (pod, now, waits_for_pods));
    }

    /// Scheduling failed for a passing reason (a binding error): retry after the backoff.
    pub fn back_off(&mut self, pod: Arc<Pod>, now: Instant) {
        let uid = uid(&pod);
        *self.attempts.entry(uid.clone()).or_default() += 1;
        let until = now + self.backoff_for(&uid);
        self.backoff_until.insert(uid.clone(), until);
        self.backoff.insert((until, uid), pod);
    }

    /// Something changed that may let set-aside pods fit: each goes back to the active
    /// queue, or to the backoff queue while its backoff lasts. With `older_than`, only the
    /// pods set aside longer than that; with `pod_waiters`, only those waiting on other pods.
    pub fn move_unschedulable(&mut self, now: Instant, older_than: Option<Duration>, pod_waiters: bool) {
        if self.unschedulable.is_empty() {
            return;
        }
        let moving: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|(_, (_, since, waits))| {
                older_than.is_none_or(|d| now.duration_since(*since) >= d) && (!pod_waiters || *waits)
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in moving {
            let Some((pod, since, _)) = self.unschedulable.remove(&uid) else { continue };
            let until = since + self.backoff_for(&uid);
            if until > now {
                self.backoff_until.insert(uid.clone(), until);
                self.backoff.insert((until, uid), pod);
            } else {
                self.add(pod);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, priority: i32, created: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"uid": uid, "creationTimestamp": created},
                                                "spec": {"priority": priority, "containers": []}}))
            .unwrap(),
        )
    }

    #[test]
    fn higher_priority_then_older_first() {
        let mut q = Queue::default();
        q.add(pod("late-low", 0, "2026-01-01T00:00:02Z"));
        q.add(pod("early-low", 0, "2026-01-01T00:00:01Z"));
        q.add(pod("high", 100, "2026-01-01T00:00:03Z"));
        let now = Instant::now();
        let order: Vec<_> = std::iter::from_fn(|| q.pop(now)).map(|p| p.metadata.uid.clone().unwrap()).collect();
        assert_eq!(order, ["high", "early-low", "late-low"]);
    }

    #[test]
    fn set_aside_pods_come_back_after_an_event_and_their_backoff() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.set_aside(pod("a", 0, "2026-01-01T00:00:01Z"), t0, false);
        q.add(pod("a", 0, "2026-01-01T00:00:01Z"));
        assert!(q.pop(t0).is_none(), "set aside until something changes");
        q.move_unschedulable(t0 + Duration::from_millis(100), None, true);
        assert!(q.pop(t0 + Duration::from_secs(5)).is_none(), "only pods waiting on pods move when a pod is placed");
        q.move_unschedulable(t0 + Duration::from_millis(100), None, false);
        assert!(q.pop(t0 + Duration::from_millis(200)).is_none(), "the first backoff is one second");
        assert_eq!(q.next_backoff_end(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop(t0 + Duration::from_secs(1)).unwrap().metadata.uid.as_deref(), Some("a"));
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        for _ in 0..6 {
            q.back_off(pod("a", 0, "2026-01-01T00:00:01Z"), t0);
            q.remove_backoff_only("a");
        }
        q.back_off(pod("a", 0, "2026-01-01T00:00:01Z"), t0);
        assert_eq!(q.next_backoff_end(), Some(t0 + MAX_BACKOFF));
        assert!(q.pop(t0 + Duration::from_secs(9)).is_none());
        assert!(q.pop(t0 + MAX_BACKOFF).is_some());
    }

    #[test]
    fn long_set_aside_pods_are_retried_without_an_event() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.set_aside(pod("a", 0, "2026-01-01T00:00:01Z"), t0, false);
        q.move_unschedulable(t0 + Duration::from_secs(60), Some(MAX_UNSCHEDULABLE), false);
        assert!(q.pop(t0 + Duration::from_secs(60)).is_none());
        q.move_unschedulable(t0 + MAX_UNSCHEDULABLE, Some(MAX_UNSCHEDULABLE), false);
        assert!(q.pop(t0 + MAX_UNSCHEDULABLE).is_some());
    }

    impl Queue {
        fn remove_backoff_only(&mut self, uid: &str) {
            if let Some(until) = self.backoff_until.remove(uid) {
                self.backoff.remove(&(until, uid.to_string()));
            }
        }
    }
}
