//! Bounds on requests served at once, as kube-apiserver's --max-requests-inflight (400) and
//! --max-mutating-requests-inflight (200): past them a request gets 429 and a Retry-After,
//! and the client backs off instead of the server drowning. Watches are long-running and
//! not counted, and neither are requests from system:masters (the cluster's administrators
//! and its own components), which kube-apiserver exempts from both its in-flight limits and
//! priority and fairness.

use crate::authn::User;
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
    pub fn admit(&self, verb: &str, user: &User) -> Result<Option<SemaphorePermit<'_>>, ApiError> {
        if user.is_master() {
            return Ok(None);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str]) -> User {
        User { name: "someone".into(), uid: String::new(), groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    #[test]
    fn past_the_bound_only_masters_get_in() {
        let inflight = InFlight::default();
        let alice = user(&["system:authenticated"]);
        let held: Vec<_> = (0..200).map(|_| inflight.admit("create", &alice).unwrap()).collect();
        assert_eq!(inflight.admit("create", &alice).unwrap_err().code, 429);
        // Reads have their own bound, and watches none.
        assert!(inflight.admit("get", &alice).unwrap().is_some());
        assert!(inflight.admit("watch", &alice).unwrap().is_none());
        let admin = user(&["system:masters", "system:authenticated"]);
        assert!(inflight.admit("create", &admin).is_ok());
        drop(held);
        assert!(inflight.admit("create", &alice).is_ok());
    }
}
