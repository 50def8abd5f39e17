//! The PersistentVolume binder, as kube-controller-manager's persistentvolume-binder binds
//! statically provisioned volumes: a Pending claim is bound to the smallest Available
//! volume that satisfies it (storage class, volume mode, access modes, label selector,
//! capacity), or to the volume it names, or that names it (pre-binding). The volume is
//! claimed first, under a resourceVersion guard, so that two claims never take one volume.
//! A volume whose claim is gone is Released, and deleted if its reclaim policy is Delete; a
//! bound claim whose volume is gone is Lost.
//!
//! Not done here: dynamic provisioning (no provisioner ships with skiff yet) and delayed
//! binding for WaitForFirstConsumer storage classes; such claims stay Pending.

use crate::{Error, drive};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use scheduler::resources::milli;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "persistentvolume-controller";
const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// kube re-examines claims and volumes this often: a claim waits for a volume to appear.
const RESYNC: Duration = Duration::from_secs(15);

struct Context {
    client: kube::Client,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
}

pub async fn run(client: kube::Client) {
    let volumes = Controller::new(Api::<PersistentVolume>::all(client.clone()), watcher::Config::default());
    let claims = Controller::new(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default());
    let (volume_store, claim_store) = (volumes.store(), claims.store());
    // A new or freed volume may satisfy any pending claim; a claim's change concerns the
    // volume it names.
    let pending = claim_store.clone();
    let claims = claims.watches(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
        move |_: PersistentVolume| {
            pending
                .state()
                .into_iter()
                .filter(|c| volume_name(c).is_none())
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    let volumes = volumes.watches(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
        |claim: PersistentVolumeClaim| volume_name(&claim).map(ObjectRef::new),
    );
    let ctx = Arc::new(Context { client, volumes: volume_store, claims: claim_store });
    tokio::join!(
        drive("persistentvolume-binder-claims", claims, sync_claim, ctx.clone()),
        drive("persistentvolume-binder-volumes", volumes, sync_volume, ctx),
    );
}

fn volume_name(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim.spec.as_ref()?.volume_name.as_deref().filter(|n| !n.is_empty())
}

fn class_of_claim(claim: &PersistentVolumeClaim) -> &str {
    claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("")
}

fn class_of_volume(volume: &PersistentVolume) -> &str {
    volume.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("")
}

fn storage(
    list: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> i128 {
    list.and_then(|l| l.get("storage")).and_then(|q| milli(&q.0)).unwrap_or(0)
}

fn requested(claim: &PersistentVolumeClaim) -> i128 {
    storage(claim.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref()))
}

fn capacity(volume: &PersistentVolume) -> i128 {
    storage(volume.spec.as_ref().and_then(|s| s.capacity.as_ref()))
}

/// Whether the volume's claim reference names this claim (by uid once it has one).
fn claimed_by(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return false };
    r.namespace == claim.namespace()
        && r.name.as_deref() == Some(claim.name_any().as_str())
        && r.uid.as_ref().is_none_or(|uid| claim.uid().as_ref() == Some(uid))
}

/// Whether the volume can hold the claim: class, mode, access modes, selector, size.
fn satisfies(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let (Some(vs), Some(cs)) = (&volume.spec, &claim.spec) else { return false };
    let modes = vs.access_modes.as_deref().unwrap_or_default();
    let selector_matches = match &cs.selector {
        None => true,
        Some(s) => Selector::try_from(s.clone()).is_ok_and(|s| s.matches(volume.labels())),
    };
    class_of_volume(volume) == class_of_claim(claim)
        && vs.volume_mode.as_deref().unwrap_or("Filesystem") == cs.volume_mode.as_deref().unwrap_or("Filesystem")
        && cs.access_modes.iter().flatten().all(|m| modes.contains(m))
        && selector_matches
        && capacity(volume) >= requested(claim)
}

/// The volume to bind a claim that names none: one already claimed for it (pre-bound),
/// else the smallest unclaimed volume that satisfies it.
fn best_volume(volumes: &[Arc<PersistentVolume>], claim: &PersistentVolumeClaim) -> Option<Arc<PersistentVolume>> {
    let usable = volumes.iter().filter(|v| v.metadata.deletion_timestamp.is_none() && satisfies(v, claim));
    let mut unclaimed = Vec::new();
    for volume in usable {
        match volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
            Some(_) if claimed_by(volume, claim) => return Some(volume.clone()),
            Some(_) => {}
            None => unclaimed.push(volume),
        }
    }
    unclaimed.into_iter().min_by_key(|v| (capacity(v), v.name_any())).cloned()
}

async fn sync_claim(claim: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action, Error> {
    if claim.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let volume = match volume_name(&claim) {
        Some(name) => ctx.volumes.get(&ObjectRef::new(name)),
        None => best_volume(&ctx.volumes.state(), &claim),
    };
    let Some(volume) = volume else {
        if volume_name(&claim).is_some() && claim.annotations().contains_key(BIND_COMPLETED) {
            let message = "Bound claim has lost its PersistentVolume. Data on the volume is lost!";
            events::record(&ctx.client, COMPONENT, claim.as_ref(), "Warning", "ClaimLost", message).await;
            write_claim_status(&ctx, &claim, json!({"phase": "Lost"})).await?;
        } else if volume_name(&claim).is_none() {
            let message = match class_of_claim(&claim) {
                "" => "no persistent volumes available for this claim and no storage class is set".to_string(),
                class => format!("storageclass.storage.k8s.io \"{class}\" not found or no volume of it available"),
            };
            events::record(&ctx.client, COMPONENT, claim.as_ref(), "Normal", "FailedBinding", &message).await;
        }
        return Ok(Action::requeue(RESYNC));
    };
    let claimed_by_other =
        volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some() && !claimed_by(&volume, &claim);
    if claimed_by_other {
        if volume_name(&claim).is_some() {
            let message = format!("volume \"{}\" already bound to a different claim.", volume.name_any());
            events::record(&ctx.client, COMPONENT, claim.as_ref(), "Warning", "FailedBinding", &message).await;
        }
        return Ok(Action::requeue(RESYNC));
    }
    bind(&ctx, &volume, &claim).await?;
    Ok(Action::requeue(RESYNC))
}

/// Binds in kube's order: the volume's claim reference, its Bound phase, then the claim's
/// volume name and its Bound phase. Each step is idempotent, so an interrupted bind is
/// finished by the next sync.
async fn bind(ctx: &Context, volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), Error> {
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let volume = if claimed_by(volume, claim)
        && volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some_and(|r| r.uid.is_some())
    {
        volume.clone()
    } else {
        let mut annotations = json!({});
        if volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_none() {
            annotations[BOUND_BY_CONTROLLER] = "yes".into();
        }
        let patch = json!({
            "metadata": {"resourceVersion": volume.resource_version(), "annotations": annotations},
            "spec": {"claimRef": {
                "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "namespace": claim.namespace(), "name": claim.name_any(),
                "uid": claim.uid(), "resourceVersion": claim.resource_version(),
            }},
        });
        volumes.patch(&volume.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?
    };
    crate::status::write(&volumes, &volume, json!({"phase": "Bound"})).await?;

    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let claim = if volume_name(claim).is_some() && claim.annotations().contains_key(BIND_COMPLETED) {
        claim.clone()
    } else {
        let mut annotations = json!({BIND_COMPLETED: "yes"});
        if volume_name(claim).is_none() {
            annotations[BOUND_BY_CONTROLLER] = "yes".into();
        }
        let patch = json!({
            "metadata": {"resourceVersion": claim.resource_version(), "annotations": annotations},
            "spec": {"volumeName": volume.name_any()},
        });
        claims.patch(&claim.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?
    };
    let spec = volume.spec.clone().unwrap_or_default();
    let status = json!({"phase": "Bound", "accessModes": spec.access_modes, "capacity": spec.capacity});
    crate::status::write(&claims, &claim, status).await?;
    Ok(())
}

async fn write_claim_status(ctx: &Context, claim: &PersistentVolumeClaim, status: Value) -> Result<(), Error> {
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    Ok(crate::status::write(&claims, claim, status).await?)
}

async fn sync_volume(volume: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action, Error> {
    if volume.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        crate::status::write(&volumes, &volume, json!({"phase": "Available"})).await?;
        return Ok(Action::await_change());
    };
    let Some(uid) = &claim_ref.uid else {
        // Pre-bound by its creator to a claim that may not exist yet.
        crate::status::write(&volumes, &volume, json!({"phase": "Available"})).await?;
        return Ok(Action::await_change());
    };
    let (namespace, name) =
        (claim_ref.namespace.clone().unwrap_or_default(), claim_ref.name.clone().unwrap_or_default());
    let cached = ctx.claims.get(&ObjectRef::new(&name).within(&namespace));
    if cached.as_ref().is_some_and(|c| c.uid().as_ref() == Some(uid)) {
        // Bound, or being bound: the claim's sync finishes the binding.
        return Ok(Action::requeue(RESYNC));
    }
    // The cache may lag: confirm the claim is gone before releasing the volume.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    if claims.get_opt(&name).await?.is_some_and(|c| c.uid().as_ref() == Some(uid)) {
        return Ok(Action::requeue(RESYNC));
    }
    match volume.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) {
        Some("Delete") => {
            let preconditions = Preconditions { uid: volume.uid(), resource_version: volume.resource_version() };
            match volumes
                .delete(&volume.name_any(), &DeleteParams { preconditions: Some(preconditions), ..Default::default() })
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some("Recycle") => {
            let message = "Recycle is not supported: use Retain or Delete";
            events::record(&ctx.client, COMPONENT, volume.as_ref(), "Warning", "VolumeFailedRecycle", message).await;
            crate::status::write(&volumes, &volume, json!({"phase": "Failed", "message": message})).await?;
        }
        _ => crate::status::write(&volumes, &volume, json!({"phase": "Released"})).await?,
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str, size: &str, class: Option<&str>, modes: &[&str]) -> Arc<PersistentVolume> {
        Arc::new(serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": class, "volumeMode": "Filesystem"},
        })).unwrap())
    }

    fn claim(size: &str, class: Option<&str>, modes: &[&str]) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": {"resources": {"requests": {"storage": size}}, "accessModes": modes, "storageClassName": class},
        }))
        .unwrap()
    }

    #[test]
    fn the_smallest_volume_that_fits_is_chosen() {
        let volumes = [
            volume("big", "10Gi", None, &["ReadWriteOnce"]),
            volume("small", "2Gi", None, &["ReadWriteOnce"]),
            volume("tiny", "500Mi", None, &["ReadWriteOnce"]),
        ];
        assert_eq!(best_volume(&volumes, &claim("1Gi", None, &["ReadWriteOnce"])).unwrap().name_any(), "small");
    }

    #[test]
    fn class_access_modes_and_selector_must_match() {
        let volumes =
            [volume("fast", "5Gi", Some("fast"), &["ReadWriteOnce"]), volume("rox", "5Gi", None, &["ReadOnlyMany"])];
        assert!(best_volume(&volumes, &claim("1Gi", None, &["ReadWriteOnce"])).is_none());
        assert_eq!(best_volume(&volumes, &claim("1Gi", Some("fast"), &["ReadWriteOnce"])).unwrap().name_any(), "fast");
        let mut selective = claim("1Gi", Some("fast"), &["ReadWriteOnce"]);
        selective.spec.as_mut().unwrap().selector =
            serde_json::from_value(json!({"matchLabels": {"tier": "slow"}})).unwrap();
        assert!(best_volume(&volumes, &selective).is_none());
    }

    #[test]
    fn a_volume_pre_bound_to_the_claim_wins_and_one_bound_elsewhere_is_skipped() {
        let mut pre_bound = (*volume("pre", "50Gi", None, &["ReadWriteOnce"])).clone();
        pre_bound.spec.as_mut().unwrap().claim_ref =
            serde_json::from_value(json!({"namespace": "ns", "name": "data"})).unwrap();
        let mut taken = (*volume("taken", "1Gi", None, &["ReadWriteOnce"])).clone();
        taken.spec.as_mut().unwrap().claim_ref =
            serde_json::from_value(json!({"namespace": "ns", "name": "other", "uid": "u2"})).unwrap();
        let volumes = [Arc::new(taken), volume("free", "2Gi", None, &["ReadWriteOnce"]), Arc::new(pre_bound)];
        assert_eq!(best_volume(&volumes, &claim("1Gi", None, &["ReadWriteOnce"])).unwrap().name_any(), "pre");
    }
}
