//! The Priority admission plugin: a pod's `priorityClassName` (or the class marked
//! globalDefault, when it names none) decides its `spec.priority` and, unless the pod says,
//! its `preemptionPolicy`. A class that does not exist, or a priority that disagrees with
//! the class, is refused (403), as kube-apiserver refuses them. The classes are kept in
//! memory from a store watch, as kube-apiserver keeps them in an informer, with a read of
//! the store for a class the watch has not delivered yet.

use crate::error::ApiError;
use crate::objects;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use store::{EventKind, Store, WatchItem};

/// The built-in classes every cluster has, as kube-apiserver creates them.
pub const SYSTEM_CLASSES: [(&str, i64, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

pub const PREFIX: &str = "/registry/scheduling.k8s.io/priorityclasses/";

#[derive(Clone, Debug)]
struct Class {
    value: i64,
    preemption_policy: Option<String>,
    global_default: bool,
}

impl Class {
    fn from_object(obj: &Value) -> Class {
        Class {
            value: obj["value"].as_i64().unwrap_or(0),
            preemption_policy: obj["preemptionPolicy"].as_str().map(String::from),
            global_default: obj["globalDefault"].as_bool().unwrap_or(false),
        }
    }
}

#[derive(Default)]
pub struct PriorityClasses {
    by_name: RwLock<HashMap<String, Class>>,
}

fn name_in(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or("")
}

impl PriorityClasses {
    /// Loads the stored classes and keeps following them.
    pub async fn start(self: &Arc<Self>, store: Arc<dyn Store>) -> store::Result<()> {
        let listed = store.range(store::RangeRequest { prefix: PREFIX.to_string(), ..Default::default() }).await?;
        {
            let mut by_name = self.by_name.write().unwrap();
            for kv in &listed.kvs {
                if let Ok(obj) = objects::parse_stored(kv) {
                    by_name.insert(name_in(&kv.key).to_string(), Class::from_object(&obj));
                }
            }
        }
        let me = self.clone();
        let mut from = listed.revision + 1;
        tokio::spawn(async move {
            loop {
                let mut events = match store.watch(PREFIX, from).await {
                    Ok(events) => events,
                    Err(e) => {
                        tracing::warn!(error = %e, "watching priority classes");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        from = store.current_revision().await.unwrap_or(from) + 1;
                        continue;
                    }
                };
                while let Some(Ok(item)) = events.recv().await {
                    let WatchItem::Event(event) = item else { continue };
                    from = event.revision() + 1;
                    let name = name_in(&event.kv.key).to_string();
                    let mut by_name = me.by_name.write().unwrap();
                    match event.kind {
                        EventKind::Delete => {
                            by_name.remove(&name);
                        }
                        _ => {
                            if let Ok(obj) = objects::parse_stored(&event.kv) {
                                by_name.insert(name, Class::from_object(&obj));
                            }
                        }
                    }
                }
            }
        });
        Ok(())
    }

    async fn class(&self, store: &Arc<dyn Store>, name: &str) -> Result<Option<Class>, ApiError> {
        if let Some(class) = self.by_name.read().unwrap().get(name) {
            return Ok(Some(class.clone()));
        }
        let kv = store.get(&format!("{PREFIX}{name}")).await?;
        Ok(kv.and_then(|kv| objects::parse_stored(&kv).ok()).map(|obj| Class::from_object(&obj)))
    }

    /// Sets the pod's priority (and preemption policy) from its class, or refuses the pod.
    pub async fn admit(&self, store: &Arc<dyn Store>, pod: &mut Value, pod_name: &str) -> Result<(), ApiError> {
        let forbidden = |why: String| ApiError::forbidden(format!("pods \"{pod_name}\" is forbidden: {why}"));
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
        let named = spec.get("priorityClassName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(String::from);
        let (name, class) = match named {
            Some(name) => match self.class(store, &name).await? {
                Some(class) => (Some(name), class),
                None => return Err(forbidden(format!("no PriorityClass with name {name} was found"))),
            },
            None => {
                let classes = self.by_name.read().unwrap();
                let default = classes.iter().filter(|(_, c)| c.global_default).min_by_key(|(_, c)| c.value);
                match default {
                    Some((name, class)) => (Some(name.clone()), class.clone()),
                    None => (None, Class { value: 0, preemption_policy: None, global_default: false }),
                }
            }
        };
        if let Some(given) = spec.get("priority").and_then(Value::as_i64)
            && given != class.value
        {
            return Err(forbidden(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {} from the given PriorityClass name",
                class.value
            )));
        }
        if let Some(name) = name {
            spec.insert("priorityClassName".into(), Value::String(name));
        }
        spec.insert("priority".into(), Value::from(class.value));
        if !spec.contains_key("preemptionPolicy") {
            let policy = class.preemption_policy.unwrap_or_else(|| "PreemptLowerPriority".into());
            spec.insert("preemptionPolicy".into(), Value::String(policy));
        }
        Ok(())
    }
}
