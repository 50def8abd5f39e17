//! Simulated nodes, in the spirit of kwok and kubemark: nodes that exist only as API objects,
//! driven by one process through the Kubernetes API like any other client. They register,
//! keep their Leases and Ready conditions fresh, and move the pods bound to them through
//! their lifecycle, so that the scheduler and the controllers can be tested and measured at
//! thousands of nodes on one machine.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> anyhow::Result<()> {
//! let fleet = sim::Fleet::new(sim::NodeTemplate { count: 50, ..Default::default() });
//! fleet.run(client).await
//! # }
//! ```

mod heartbeat;
mod node;
mod pods;

pub use node::{NodeTemplate, Taint};
pub use pods::RUN_SECONDS_ANNOTATION;

use std::sync::Arc;

/// The simulated nodes of one process.
pub struct Fleet {
    template: Arc<NodeTemplate>,
}

impl Fleet {
    pub fn new(template: NodeTemplate) -> Fleet {
        Fleet { template: Arc::new(template) }
    }

    /// Creates (or takes over) every node and reports it Ready, once: nodes that then stay
    /// still, as benchmarks of the scheduler want them.
    pub async fn register(&self, client: &kube::Client) -> anyhow::Result<()> {
        node::register(client, &self.template).await
    }

    /// Registers the nodes, then keeps them alive and runs their pods until an error stops
    /// it (or the task is dropped).
    pub async fn run(&self, client: kube::Client) -> anyhow::Result<()> {
        self.register(&client).await?;
        tracing::info!(nodes = self.template.count, "simulated nodes registered");
        tokio::try_join!(
            heartbeat::run(client.clone(), self.template.clone()),
            pods::run(client, self.template.clone())
        )?;
        Ok(())
    }
}

/// Runs one write per node index, `template.concurrency` at a time; the first error stops it.
pub(crate) async fn for_each_node<F, Fut>(
    template: &NodeTemplate,
    indexes: impl Iterator<Item = usize>,
    write: F,
) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(indexes).map(write).buffer_unordered(template.concurrency.max(1)).try_collect::<()>().await?;
    Ok(())
}
