//! Keeping the nodes alive, as a kubelet does: each node's Lease renewed every 10 s, and its
//! Ready condition's heartbeat every minute. The work is spread over the interval (a tenth
//! of the nodes each second), so that 5,000 nodes cost a steady trickle of small writes
//! rather than a burst every 10 s.

use crate::node::{LEASE_NAMESPACE, MANAGER, NodeTemplate};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Seconds between renewals of one node's Lease (the kubelet's default).
const LEASE_RENEW_SECONDS: usize = 10;
/// Seconds between reports of one node's status.
const STATUS_REPORT_SECONDS: usize = 60;
/// How long a Lease holds without renewal (the kubelet's default).
const LEASE_DURATION_SECONDS: i32 = 40;

fn now(format: chrono::SecondsFormat) -> String {
    chrono::Utc::now().to_rfc3339_opts(format, true)
}

pub async fn run(client: kube::Client, template: Arc<NodeTemplate>) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    // Every Lease exists before the first renewal.
    crate::for_each_node(&template, 0..template.count, |i| {
        let (leases, name) = (&leases, template.name(i));
        async move {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                         "renewTime": now(chrono::SecondsFormat::Micros)},
            });
            leases.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(lease)).await.map(drop)
        }
    })
    .await?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for second in 0usize.. {
        tick.tick().await;
        let renewing = (0..template.count).filter(|i| i % LEASE_RENEW_SECONDS == second % LEASE_RENEW_SECONDS);
        let renewed = crate::for_each_node(&template, renewing, |i| {
            let (leases, name) = (&leases, template.name(i));
            async move {
                let renew = json!({"spec": {"renewTime": now(chrono::SecondsFormat::Micros)}});
                leases.patch(&name, &PatchParams::default(), &Patch::Merge(renew)).await.map(drop)
            }
        })
        .await;
        // A beat that fails (the API server restarting, say) is made again on the next round.
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "could not renew the Leases of simulated nodes; retrying");
        }
        let reporting = (0..template.count).filter(|i| i % STATUS_REPORT_SECONDS == second % STATUS_REPORT_SECONDS);
        let reported = crate::for_each_node(&template, reporting, |i| {
            let (nodes, template) = (&nodes, &template);
            async move {
                let status = template.status(i, &now(chrono::SecondsFormat::Secs));
                nodes.patch_status(&template.name(i), &PatchParams::default(), &Patch::Merge(status)).await.map(drop)
            }
        })
        .await;
        if let Err(e) = reported {
            tracing::warn!(error = %e, "could not report the status of simulated nodes; retrying");
        }
    }
    Ok(())
}
