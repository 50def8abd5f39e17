//! skiff: Kubernetes, whole, in one binary. This is the command line; the parts live in
//! their own crates.

mod agent;
mod bench;
mod cluster_reset;
mod datastore;
mod failover;
mod files;
mod host;
mod image;
mod join;
mod kubeconfig;
mod loopback_client;
mod pki;
mod server;
mod sim;
mod snapshot;

use clap::{Parser, Subcommand};

/// The API server allocates and frees a great many small objects (decoded and encoded
/// objects, watch events) across threads; mimalloc spends about a third of the CPU glibc's
/// allocator does on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "skiff", version, about = "Kubernetes, whole, in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: the API server, on the embedded store or on etcd.
    Server(server::ServerArgs),
    /// Run a node agent that joins the cluster's servers (--server URL[,URL...] --token TOKEN).
    Agent(agent::StandaloneArgs),
    /// Simulate nodes against an API server: register them, keep them alive, run their pods.
    Sim(sim::SimArgs),
    /// Measure a component and print its figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Save the cluster's state (the embedded store's or etcd's) to a snapshot file.
    #[command(subcommand, name = "etcd-snapshot")]
    EtcdSnapshot(snapshot::SnapshotCommand),
    /// Manage this node's container images: import archives, list, remove.
    Image(image::ImageArgs),
    /// Supervise one container (the node agent runs this; not for people).
    #[command(hide = true)]
    Shim { run_dir: std::path::PathBuf },
    /// Run a command inside a running container (for probes, hooks and `kubectl exec`; not
    /// for people).
    #[command(hide = true)]
    ShimExec {
        /// Stdin is a Unix socket: run the command on a terminal of the container's and send
        /// its controlling side back through the socket.
        #[arg(long)]
        tty: bool,
        run_dir: std::path::PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    // mimalloc asks for transparent huge pages on its arenas, so each partly used 2 MiB
    // region is all resident: the idle cluster held about 45 MB of anonymous memory with
    // them and 15 MB without. Containers get the host's policy back (`runtime::security`),
    // since the setting is inherited across fork and exec.
    let _ = nix::sys::prctl::set_thp_disable(true);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The shims fork and join namespaces: they must do so before any other thread exists.
    match &cli.command {
        Command::Shim { run_dir } => {
            return match runtime::shim::run(run_dir) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("skiff shim: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::ShimExec { tty, run_dir, command } => {
            return match runtime::enter::run(run_dir, command, *tty) {
                Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
                Err(e) => {
                    eprintln!("skiff shim-exec: {e:#}");
                    std::process::ExitCode::from(126)
                }
            };
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skiff: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Sim(args) => sim::run(args).await,
            Command::Bench(cmd) => bench::run(cmd).await,
            Command::Image(args) => image::run(args),
            Command::EtcdSnapshot(command) => snapshot::run(command).await,
            Command::Shim { .. } | Command::ShimExec { .. } => {
                unreachable!("the shims ran before the async runtime started")
            }
        }
    });
    // Dropping the runtime would cancel every task, and kube-runtime's controllers panic when
    // a reconcile they await is cancelled; the process is ending, and its tasks with it.
    std::mem::forget(runtime);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
