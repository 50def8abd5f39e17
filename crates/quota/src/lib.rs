//! Resource quota arithmetic, shared by the API server's ResourceQuota and LimitRanger
//! admission and by the controller manager's quota controller, so that both count alike:
//! quantities, resource lists, a pod's total requests and limits, what each object charges
//! to a quota, and which pods a scoped quota counts.
//!
//! ```
//! let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
//!     "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]}
//! })).unwrap();
//! let usage = quota::usage::pod_usage(&pod, chrono::Utc::now());
//! assert_eq!(quota::resource_list::pretty(&usage), "count/pods=1,cpu=250m,pods=1,requests.cpu=250m");
//! ```

pub mod pod_resources;
pub mod quantity;
pub mod resource_list;
pub mod scopes;
pub mod usage;
