//! Bounds on requests served at once, as kube-apiserver's --max-requests-inflight (400) and
//! --max-mutating-requests-inflight (200): past them a request gets 429 and a Retry-After,
//! and the client backs off instead of the server drowning. Watches are long-running and
//! not counted.

use crate::error::ApiError;
use tokio::sync::{Semaphore, SemaphorePermit};

pub struct InFlight {
    reads: Semaphore,
    writes: Semaphore,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight { reads: Semaphore::new(400), writes: Semaphore::new(200) }
    }
}

impl InFlight {
    /// A place for one request, held until the permit is dropped.
    pub fn admit(&self, verb: &str) -> Result<Option<SemaphorePermit<'_>>, ApiError> {
        let pool = match verb {
            "watch" => return Ok(None),
            "get" | "list" | "head" => &self.reads,
            _ => &self.writes,
        };
        pool.try_acquire()
            .map(Some)
            .map_err(|_| ApiError::too_many_requests("Too many requests, please try again later.", 1))
    }
}
