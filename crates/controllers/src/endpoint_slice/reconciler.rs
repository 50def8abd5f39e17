//! Turns the endpoints an owner should publish into EndpointSlices with as few writes as it
//! can, as kube-controller-manager's slice reconciler does: endpoints of the same address
//! type and ports share slices of a bounded size; an endpoint stays in the slice it is
//! already in; the endpoints that are new fill the room left in slices being written anyway,
//! then in the others, and only then go to new slices; a slice left empty is deleted.
//! Writes go creations first and deletions last, so that no endpoint is ever missing from
//! all slices meanwhile. Used by the EndpointSlice controller (owner: a Service) and the
//! mirroring controller (owner: an Endpoints object).

use crate::informer::Informer;
use crate::trigger_time;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// What slices of the same owner share.
pub struct Template {
    pub owner: OwnerReference,
    pub namespace: String,
    /// The labels every slice carries, the managing controller's among them.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The most endpoints a slice holds.
    pub capacity: usize,
    /// The address type of the empty slice kept while there are no endpoints (the
    /// EndpointSlice controller keeps one; the mirroring controller none).
    pub placeholder: Option<&'static str>,
}

/// Endpoints of one address type serving the same ports.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub address_type: String,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

impl Group {
    fn fits(&self, slice: &EndpointSlice) -> bool {
        slice.address_type == self.address_type && slice.ports.as_deref().unwrap_or_default() == self.ports.as_slice()
    }
}

/// Adds `endpoint` to the group of its address type and ports.
pub fn add(groups: &mut Vec<Group>, address_type: &str, ports: Vec<EndpointPort>, endpoint: Endpoint) {
    match groups.iter_mut().find(|g| g.address_type == address_type && g.ports == ports) {
        Some(group) => group.endpoints.push(endpoint),
        None => groups.push(Group { address_type: address_type.to_string(), ports, endpoints: vec![endpoint] }),
    }
}

/// What identifies an endpoint across its changes: the object it stands for, or else its
/// address.
fn identity(endpoint: &Endpoint) -> (Option<String>, Option<String>) {
    let uid = endpoint.target_ref.as_ref().and_then(|r| r.uid.clone());
    (uid, endpoint.addresses.first().cloned())
}

#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<Arc<EndpointSlice>>,
}

/// The writes that take `existing` (the owner's slices) to `groups`.
pub fn plan(template: &Template, existing: Vec<Arc<EndpointSlice>>, groups: Vec<Group>) -> Plan {
    let mut plan = Plan::default();
    let mut unused: Vec<Arc<EndpointSlice>> = existing;
    let any_endpoints = groups.iter().any(|g| !g.endpoints.is_empty());
    for group in groups.into_iter().filter(|g| !g.endpoints.is_empty()) {
        let (mine, others): (Vec<_>, Vec<_>) = unused.into_iter().partition(|s| group.fits(s));
        unused = others;
        plan_group(template, group, mine, &mut plan);
    }
    if !any_endpoints && let Some(address_type) = template.placeholder {
        let placeholder = Group { address_type: address_type.into(), ports: Vec::new(), endpoints: Vec::new() };
        match unused.iter().position(|s| placeholder.fits(s) && s.endpoints.as_ref().is_none_or(Vec::is_empty)) {
            Some(i) => {
                let kept = unused.remove(i);
                let wanted = slice(template, &placeholder, Vec::new(), Some(&kept));
                if wanted != *kept {
                    plan.update.push(wanted);
                }
            }
            None => plan.create.push(slice(template, &placeholder, Vec::new(), None)),
        }
    }
    plan.delete.extend(unused);
    plan
}

fn plan_group(template: &Template, group: Group, existing: Vec<Arc<EndpointSlice>>, plan: &mut Plan) {
    let mut wanted: HashMap<_, &Endpoint> = group.endpoints.iter().map(|e| (identity(e), e)).collect();
    // Each existing slice keeps the endpoints it has that are still wanted, as now wanted.
    let mut slices: Vec<(Arc<EndpointSlice>, Vec<Endpoint>)> = existing
        .into_iter()
        .map(|s| {
            let kept = s.endpoints.iter().flatten().filter_map(|e| wanted.remove(&identity(e)).cloned()).collect();
            (s, kept)
        })
        .collect();
    let mut fresh: Vec<Endpoint> =
        group.endpoints.iter().filter(|e| wanted.contains_key(&identity(e))).cloned().collect();
    fresh.reverse();
    let changed =
        |(s, kept): &(Arc<EndpointSlice>, Vec<Endpoint>)| slice(template, &group, kept.clone(), Some(s)) != **s;
    // Room in slices written anyway goes first, the fullest first; then room elsewhere.
    slices.sort_by_key(|entry| (!changed(entry) || entry.1.is_empty(), std::cmp::Reverse(entry.1.len())));
    for (_, kept) in slices.iter_mut().filter(|(_, kept)| !kept.is_empty()) {
        while kept.len() < template.capacity
            && let Some(e) = fresh.pop()
        {
            kept.push(e);
        }
    }
    for (_, kept) in slices.iter_mut().filter(|(_, kept)| kept.is_empty()) {
        while kept.len() < template.capacity
            && let Some(e) = fresh.pop()
        {
            kept.push(e);
        }
    }
    for (existing, kept) in slices {
        let wanted = slice(template, &group, kept, Some(&existing));
        if wanted.endpoints.as_ref().is_none_or(Vec::is_empty) {
            plan.delete.push(existing);
        } else if wanted != *existing {
            plan.update.push(wanted);
        }
    }
    while !fresh.is_empty() {
        let chunk = fresh.split_off(fresh.len().saturating_sub(template.capacity)).into_iter().rev().collect();
        plan.create.push(slice(template, &group, chunk, None));
    }
}

/// The slice holding `endpoints`: `existing` rewritten, or a new one.
fn slice(
    template: &Template,
    group: &Group,
    endpoints: Vec<Endpoint>,
    existing: Option<&EndpointSlice>,
) -> EndpointSlice {
    let mut metadata = existing.map(|s| s.metadata.clone()).unwrap_or_else(|| ObjectMeta {
        generate_name: Some(format!(
            "{}-",
            template.labels.get(SERVICE_NAME_LABEL).map(String::as_str).unwrap_or(&template.owner.name)
        )),
        namespace: Some(template.namespace.clone()),
        ..Default::default()
    });
    metadata.labels = Some(template.labels.clone());
    // The trigger time is written with the slices that change for other reasons: a slice
    // whose endpoints are as wanted keeps the one it has.
    let trigger_time = existing.and_then(|s| s.metadata.annotations.as_ref()?.get_key_value(trigger_time::ANNOTATION));
    let annotations = template.annotations.clone().into_iter().chain(trigger_time.map(|(k, v)| (k.clone(), v.clone())));
    metadata.annotations = Some(annotations.collect::<BTreeMap<_, _>>()).filter(|a| !a.is_empty());
    metadata.owner_references = Some(vec![template.owner.clone()]);
    EndpointSlice {
        metadata,
        address_type: group.address_type.clone(),
        ports: Some(group.ports.clone()).filter(|p| !p.is_empty()),
        endpoints: Some(endpoints).filter(|e| !e.is_empty()),
    }
}

/// Writes plans, and remembers the slices it created until its informer shows them: a
/// plan made before then would create them again.
pub struct Writer {
    client: kube::Client,
    slices: Arc<Informer<EndpointSlice>>,
    created: Mutex<HashMap<String, Vec<(String, Instant)>>>,
}

/// How long a created slice is waited for before it is assumed lost (deleted at once).
const CREATED_WAIT: Duration = Duration::from_secs(30);

impl Writer {
    pub fn new(client: kube::Client, slices: Arc<Informer<EndpointSlice>>) -> Writer {
        Writer { client, slices, created: Mutex::default() }
    }

    /// The slices of the owner with this uid managed by `manager`, or None while the
    /// informer has yet to show slices created for it.
    pub fn existing(&self, owner_uid: &str, manager: &str) -> Option<Vec<Arc<EndpointSlice>>> {
        let owned = self.slices.owned_by(owner_uid);
        let mut created = self.created.lock().unwrap();
        if let Some(pending) = created.get_mut(owner_uid) {
            let seen: HashSet<&str> = owned.iter().filter_map(|s| s.metadata.name.as_deref()).collect();
            pending.retain(|(name, at)| !seen.contains(name.as_str()) && at.elapsed() < CREATED_WAIT);
            if !pending.is_empty() {
                return None;
            }
            created.remove(owner_uid);
        }
        let managed = |s: &Arc<EndpointSlice>| {
            s.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str) == Some(manager)
        };
        Some(owned.into_iter().filter(managed).collect())
    }

    pub async fn write(&self, namespace: &str, plan: Plan) -> kube::Result<()> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), namespace);
        for slice in plan.create {
            let owner =
                slice.metadata.owner_references.iter().flatten().next().map(|r| r.uid.clone()).unwrap_or_default();
            let created = api.create(&PostParams::default(), &slice).await?;
            let name = created.metadata.name.unwrap_or_default();
            self.created.lock().unwrap().entry(owner).or_default().push((name, Instant::now()));
        }
        for slice in plan.update {
            api.replace(slice.metadata.name.as_deref().unwrap_or_default(), &PostParams::default(), &slice).await?;
        }
        for slice in plan.delete {
            let preconditions = Preconditions { uid: slice.metadata.uid.clone(), resource_version: None };
            let params = DeleteParams { preconditions: Some(preconditions), ..Default::default() };
            match api.delete(slice.metadata.name.as_deref().unwrap_or_default(), &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(placeholder: Option<&'static str>) -> Template {
        Template {
            owner: serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc", "controller": true}),
            )
            .unwrap(),
            namespace: "default".into(),
            labels: [(SERVICE_NAME_LABEL.to_string(), "web".to_string())].into(),
            annotations: BTreeMap::new(),
            capacity: 3,
            placeholder,
        }
    }

    fn endpoint(i: usize, ready: bool) -> Endpoint {
        serde_json::from_value(json!({"addresses": [format!("10.0.0.{i}")], "conditions": {"ready": ready},
                                      "targetRef": {"kind": "Pod", "name": format!("p{i}"), "uid": format!("u{i}")}}))
        .unwrap()
    }

    fn group(endpoints: Vec<Endpoint>) -> Group {
        let ports = vec![serde_json::from_value(json!({"name": "http", "port": 8080, "protocol": "TCP"})).unwrap()];
        Group { address_type: "IPv4".into(), ports, endpoints }
    }

    /// The slices after the plan is carried out, named as the plan names them.
    fn apply(existing: Vec<Arc<EndpointSlice>>, plan: Plan) -> Vec<Arc<EndpointSlice>> {
        let updated: HashMap<_, _> = plan.update.into_iter().map(|s| (s.metadata.name.clone(), s)).collect();
        let deleted: HashSet<_> = plan.delete.iter().map(|s| s.metadata.name.clone()).collect();
        let mut after: Vec<Arc<EndpointSlice>> = existing
            .into_iter()
            .filter(|s| !deleted.contains(&s.metadata.name))
            .map(|s| updated.get(&s.metadata.name).cloned().map(Arc::new).unwrap_or(s))
            .collect();
        let count = after.len();
        for (i, mut s) in plan.create.into_iter().enumerate() {
            s.metadata.name = Some(format!("web-{}", count + i));
            after.push(Arc::new(s));
        }
        after
    }

    fn sizes(slices: &[Arc<EndpointSlice>]) -> Vec<usize> {
        slices.iter().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).collect()
    }

    #[test]
    fn endpoints_are_split_at_capacity() {
        let plan = plan(&template(None), Vec::new(), vec![group((0..7).map(|i| endpoint(i, true)).collect())]);
        assert_eq!(plan.create.len(), 3);
        assert_eq!(sizes(&apply(Vec::new(), plan)), [3, 3, 1]);
    }

    #[test]
    fn unchanged_endpoints_cause_no_writes_and_changes_touch_one_slice() {
        let all: Vec<_> = (0..7).map(|i| endpoint(i, true)).collect();
        let slices = apply(Vec::new(), plan(&template(None), Vec::new(), vec![group(all.clone())]));
        let again = plan(&template(None), slices.clone(), vec![group(all.clone())]);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
        let mut changed = all.clone();
        changed[4] = endpoint(4, false);
        let one = plan(&template(None), slices.clone(), vec![group(changed)]);
        assert_eq!((one.create.len(), one.update.len(), one.delete.len()), (0, 1, 0));
        // A trigger time on a slice is no reason to rewrite it, and is kept when it is.
        let mut timed = slices.clone();
        let stamped = |s: &Arc<EndpointSlice>| {
            let mut s = (**s).clone();
            trigger_time::annotate(&mut s.metadata.annotations, Some(chrono::Utc::now()));
            Arc::new(s)
        };
        timed[1] = stamped(&timed[1]);
        let again = plan(&template(None), timed.clone(), vec![group(all)]);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
        let mut changed: Vec<_> = (0..7).map(|i| endpoint(i, true)).collect();
        changed[4] = endpoint(4, false);
        let one = plan(&template(None), timed.clone(), vec![group(changed)]);
        assert_eq!(one.update[0].metadata.annotations, timed[1].metadata.annotations);
    }

    #[test]
    fn new_endpoints_fill_slices_being_written_before_others() {
        let slices = apply(
            Vec::new(),
            plan(&template(None), Vec::new(), vec![group((0..5).map(|i| endpoint(i, true)).collect())]),
        );
        // Endpoint 0 (in the full slice) goes: its slice is rewritten and takes the new one.
        let wanted: Vec<_> = (1..6).map(|i| endpoint(i, true)).collect();
        let next = plan(&template(None), slices.clone(), vec![group(wanted)]);
        assert_eq!((next.create.len(), next.update.len(), next.delete.len()), (0, 1, 0));
        assert_eq!(sizes(&apply(slices, next)), [3, 2]);
    }

    #[test]
    fn emptied_slices_are_deleted_and_a_placeholder_kept() {
        let slices = apply(
            Vec::new(),
            plan(&template(Some("IPv4")), Vec::new(), vec![group((0..4).map(|i| endpoint(i, true)).collect())]),
        );
        let emptied = plan(&template(Some("IPv4")), slices.clone(), Vec::new());
        assert_eq!((emptied.create.len(), emptied.delete.len()), (1, 2));
        let after = apply(slices, emptied);
        assert_eq!(after.len(), 1);
        assert!(after[0].endpoints.is_none() && after[0].ports.is_none());
        let still = plan(&template(Some("IPv4")), after, Vec::new());
        assert!(still.create.is_empty() && still.update.is_empty() && still.delete.is_empty());
        assert!(plan(&template(None), Vec::new(), Vec::new()).create.is_empty());
    }

    #[test]
    fn slices_of_other_ports_are_replaced() {
        let slices = apply(Vec::new(), plan(&template(None), Vec::new(), vec![group(vec![endpoint(1, true)])]));
        let mut moved = group(vec![endpoint(1, true)]);
        moved.ports[0].port = Some(9090);
        let next = plan(&template(None), slices, vec![moved]);
        assert_eq!((next.create.len(), next.update.len(), next.delete.len()), (1, 0, 1));
    }
}
