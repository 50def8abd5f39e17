//! `skiff bench`: benchmarks that print their figures.

mod api;
mod busybox_image;
mod client;
mod drive;
mod etcd_process;
mod figures;
mod pods;
mod scheduler;
mod server;
mod store;
mod store_load;
mod workloads;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Start a server and measure start-up, idle memory, creates, gets, lists and watch delivery.
    Api(api::ApiArgs),
    /// Start a server on simulated nodes and measure how fast its scheduler places pods.
    Scheduler(scheduler::SchedulerArgs),
    /// Start a single-node cluster with its node agent and measure pod startup with real
    /// containers, the agent's memory per pod, idle memory and start to node Ready.
    Pods(pods::PodsArgs),
    /// Run the same load on the embedded store and on etcd (started here), side by side:
    /// durable writes at several concurrencies, watch delivery, disk growth under updates.
    Store(store::StoreArgs),
    /// Start a whole control plane on simulated nodes and measure a Deployment's creation,
    /// rolling update and namespace deletion.
    Workloads(workloads::WorkloadsArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Api(args) => api::run(args).await,
        BenchCommand::Scheduler(args) => scheduler::run(args).await,
        BenchCommand::Workloads(args) => workloads::run(args).await,
        BenchCommand::Pods(args) => pods::run(args).await,
        BenchCommand::Store(args) => store::run(args).await,
    }
}
