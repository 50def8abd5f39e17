//! The queue from the store's callers to its writer thread, which takes what is queued as one
//! batch and commits it with one fsync.
//!
//! While writes come from many callers at once, the writer waits a little for a batch as large
//! as its last one before it commits: each commit has a fixed cost (the fsync and the I/O it
//! submits, the pages every commit rewrites, waking the writer and the callers), and under load
//! one commit then pays it for many writes. A lone writer's batches have one write, so it never
//! waits; a write never waits more than [`LINGER`] for others to join it.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest the first write of a batch waits for others to join it.
const LINGER: Duration = Duration::from_millis(1);

pub(super) struct BatchQueue<T> {
    state: Mutex<State<T>>,
    /// Signalled when the queue holds as many items as the writer waits for, or is closed.
    filled: Condvar,
}

struct State<T> {
    items: Vec<T>,
    /// When the oldest queued item came.
    oldest: Option<Instant>,
    /// How many queued items make it worth waking the writer.
    wake_at: usize,
    closed: bool,
}

impl<T> BatchQueue<T> {
    pub fn new() -> Self {
        let state = State { items: Vec::new(), oldest: None, wake_at: 1, closed: false };
        BatchQueue { state: Mutex::new(state), filled: Condvar::new() }
    }

    /// Queues `item`, or gives it back if the queue is closed.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return Err(item);
        }
        state.oldest.get_or_insert_with(Instant::now);
        state.items.push(item);
        if state.items.len() >= state.wake_at {
            self.filled.notify_one();
        }
        Ok(())
    }

    /// Refuses further items; the writer still gets those already queued.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        self.filled.notify_one();
    }

    /// The next batch, of at most `max` items: once there is an item, it waits until `wanted`
    /// are queued or the oldest has waited [`LINGER`]. `None` once the queue is closed and empty.
    pub fn next_batch(&self, wanted: usize, max: usize) -> Option<Vec<T>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.items.is_empty() {
            if state.closed {
                return None;
            }
            state.wake_at = 1;
            state = self.filled.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        let deadline = state.oldest.map_or_else(Instant::now, |oldest| oldest + LINGER);
        while state.items.len() < wanted.min(max) && !state.closed {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero()) else {
                break;
            };
            state.wake_at = wanted.min(max);
            state = self.filled.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        // Until the writer comes back for more, there is no one to wake.
        state.wake_at = usize::MAX;
        let taken = state.items.len().min(max);
        let batch: Vec<T> = state.items.drain(..taken).collect();
        state.oldest = if state.items.is_empty() { None } else { Some(Instant::now()) };
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_lone_item_is_a_batch() {
        let queue = BatchQueue::new();
        queue.push(1).unwrap();
        assert_eq!(queue.next_batch(1, 10), Some(vec![1]));
    }

    #[test]
    fn the_writer_waits_for_the_batch_it_wants_no_longer_than_the_linger() {
        let queue = BatchQueue::new();
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        let started = Instant::now();
        assert_eq!(queue.next_batch(3, 10), Some(vec![1, 2]));
        // LINGER is a millisecond; the margin is for a loaded machine.
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    }

    #[test]
    fn a_batch_is_at_most_max_and_the_rest_stays_queued() {
        let queue = BatchQueue::new();
        for i in 0..5 {
            queue.push(i).unwrap();
        }
        assert_eq!(queue.next_batch(5, 3), Some(vec![0, 1, 2]));
        assert_eq!(queue.next_batch(5, 3), Some(vec![3, 4]));
    }

    #[test]
    fn closing_hands_out_what_is_queued_then_ends() {
        let queue = BatchQueue::new();
        queue.push(1).unwrap();
        queue.close();
        assert_eq!(queue.push(2), Err(2));
        assert_eq!(queue.next_batch(4, 10), Some(vec![1]));
        assert_eq!(queue.next_batch(4, 10), None);
    }

    #[test]
    fn a_waiting_writer_wakes_for_the_first_item() {
        let queue = Arc::new(BatchQueue::new());
        let writer = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.next_batch(1, 10))
        };
        std::thread::sleep(Duration::from_millis(20));
        queue.push(7).unwrap();
        assert_eq!(writer.join().unwrap(), Some(vec![7]));
    }
}
