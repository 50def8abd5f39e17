//! Connecting to a port of a pod from the node, for `kubectl port-forward`: to its loopback
//! address inside its network namespace, as container runtimes do, so that a server
//! listening on 127.0.0.1 in the pod is reached too.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a connection may take to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `port` on the loopback of the network namespace mounted at `netns` (the
/// host's, for `None`: a pod on the host's network).
pub async fn connect(netns: Option<&Path>, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let connect = move || TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), CONNECT_TIMEOUT);
    let netns: Option<PathBuf> = netns.map(Path::to_path_buf);
    // A socket belongs to the namespace it is made in: a thread of its own enters the pod's,
    // makes and connects the socket there, and ends, so that no thread of the agent's is
    // left in the pod's namespace.
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let connected = match netns {
            None => connect(),
            Some(netns) => std::fs::File::open(&netns)
                .and_then(|ns| {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
                })
                .and_then(|()| connect()),
        };
        let _ = done.send(connected);
    });
    let stream = result.await.map_err(|_| std::io::Error::other("the thread that connects into the pod ended"))??;
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}
