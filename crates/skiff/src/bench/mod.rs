//! `skiff bench`: benchmarks that print their figures.

mod api;
mod client;
mod figures;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Start a server and measure start-up, idle memory, creates, gets, lists and watch delivery.
    Api(api::ApiArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Api(args) => api::run(args).await,
    }
}
