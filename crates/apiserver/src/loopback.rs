//! How the components that run in the server's process (the scheduler, the controller
//! manager) reach its API: each request goes straight to the handlers, as a given user, with
//! no socket, TLS or HTTP framing in between. To those components it is an API server like
//! any other; the only difference is the cost, which for them was mostly encryption and
//! system calls.
//!
//! ```no_run
//! # async fn demo(loopback: apiserver::Loopback) {
//! let scheduler = loopback.as_user("system:kube-scheduler");
//! let request = http::Request::get("/api/v1/nodes").body(bytes::Bytes::new()).unwrap();
//! let response = scheduler.handle(request).await;
//! # }
//! ```

use crate::api::Api;
use crate::authn::{MASTERS, User};
use crate::http_util::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::sync::Arc;

/// The control plane's components are admitted as the cluster's administrators are (their
/// own narrower roles are not written yet).
const GROUPS: [&str; 2] = [MASTERS, "system:authenticated"];

#[derive(Clone)]
pub struct Loopback {
    api: Arc<Api>,
    user: Arc<User>,
}

impl Loopback {
    pub(crate) fn new(api: Arc<Api>) -> Loopback {
        Loopback { api, user: Arc::new(user("system:apiserver")) }
    }

    /// The same API, for the component `name` (as its requests are attributed).
    pub fn as_user(&self, name: &str) -> Loopback {
        Loopback { api: self.api.clone(), user: Arc::new(user(name)) }
    }

    /// The same API, for the node agent of the node `name`, admitted as every node is (the
    /// `system:nodes` group), so that it may do here what it could do from another machine.
    pub fn as_node(&self, name: &str) -> Loopback {
        Loopback { api: self.api.clone(), user: Arc::new(User::node(name)) }
    }

    /// Serves one request, as a connection would.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Body> {
        let request = request.map(|body| Full::new(body).map_err(|never| match never {}).boxed());
        self.api.handle(request, Some(&self.user)).await
    }
}

fn user(name: &str) -> User {
    User { name: name.into(), uid: String::new(), groups: GROUPS.map(String::from).to_vec() }
}
