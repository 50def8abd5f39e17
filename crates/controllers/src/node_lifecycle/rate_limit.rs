//! The rate limit on NoExecute tainting: each zone has a queue of nodes waiting for their
//! taint, drained no faster than its token bucket allows (one token of burst, refilled at the
//! zone's rate; a rate of 0 stops it). Tainting is what evicts pods, so this is what keeps a
//! large outage from emptying the cluster at once.

use std::time::{Duration, Instant};

/// A token bucket holding at most one token.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, now: Instant) -> TokenBucket {
        TokenBucket { rate, tokens: 1.0, last: now }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        self.tokens = (self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.rate).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Waiting {
    node: String,
    process_at: Instant,
}

/// Nodes waiting for their NoExecute taint, in the order they are due.
pub struct TaintQueue {
    limiter: TokenBucket,
    waiting: Vec<Waiting>,
}

impl TaintQueue {
    pub fn new(rate: f64, now: Instant) -> TaintQueue {
        TaintQueue { limiter: TokenBucket::new(rate, now), waiting: Vec::new() }
    }

    /// Queues the node, due now; false if it was queued already.
    pub fn add(&mut self, node: &str, now: Instant) -> bool {
        if self.waiting.iter().any(|w| w.node == node) {
            return false;
        }
        self.insert(node, now);
        true
    }

    fn insert(&mut self, node: &str, process_at: Instant) {
        let at = self.waiting.partition_point(|w| w.process_at <= process_at);
        self.waiting.insert(at, Waiting { node: node.to_string(), process_at });
    }

    /// Takes the node out of the queue; whether it was there.
    pub fn remove(&mut self, node: &str) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|w| w.node != node);
        self.waiting.len() != before
    }

    /// A new rate (the zone's state changed); the bucket starts full again.
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        if self.limiter.rate != rate {
            self.limiter = TokenBucket::new(rate, now);
        }
    }

    /// The next node whose turn has come, if the rate allows one now. The caller taints it,
    /// or gives it back with [`TaintQueue::retry`].
    pub fn next(&mut self, now: Instant) -> Option<String> {
        let head = self.waiting.first()?;
        if head.process_at > now || !self.limiter.try_take(now) {
            return None;
        }
        Some(self.waiting.remove(0).node)
    }

    /// Puts a node whose tainting failed back in the queue, due after `wait`.
    pub fn retry(&mut self, node: &str, now: Instant, wait: Duration) {
        if !self.waiting.iter().any(|w| w.node == node) {
            self.insert(node, now + wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_leave_the_queue_in_order_at_the_rate() {
        let start = Instant::now();
        let mut queue = TaintQueue::new(0.1, start);
        assert!(queue.add("a", start));
        assert!(queue.add("b", start + Duration::from_millis(1)));
        assert!(!queue.add("a", start + Duration::from_millis(2)));
        let now = start + Duration::from_millis(3);
        assert_eq!(queue.next(now).as_deref(), Some("a"));
        assert_eq!(queue.next(now), None);
        assert_eq!(queue.next(start + Duration::from_secs(9)), None);
        assert_eq!(queue.next(start + Duration::from_secs(11)).as_deref(), Some("b"));
        assert_eq!(queue.next(start + Duration::from_secs(40)), None);
    }

    #[test]
    fn a_zero_rate_stops_the_queue_and_a_new_rate_restarts_it() {
        let start = Instant::now();
        let mut queue = TaintQueue::new(0.0, start);
        queue.add("a", start);
        assert_eq!(queue.next(start + Duration::from_secs(100)), None);
        queue.set_rate(0.01, start);
        assert_eq!(queue.next(start).as_deref(), Some("a"));
    }

    #[test]
    fn a_failed_node_waits_its_turn_again_and_removal_drops_it() {
        let start = Instant::now();
        let mut queue = TaintQueue::new(1000.0, start);
        queue.add("a", start);
        queue.add("b", start);
        assert_eq!(queue.next(start).as_deref(), Some("a"));
        queue.retry("a", start, Duration::from_millis(50));
        let later = start + Duration::from_millis(10);
        assert_eq!(queue.next(later).as_deref(), Some("b"));
        assert_eq!(queue.next(later + Duration::from_millis(1)), None);
        assert!(queue.remove("a"));
        assert_eq!(queue.next(start + Duration::from_secs(1)), None);
    }
}
