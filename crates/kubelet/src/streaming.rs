//! The kubelet's streaming sessions: `kubectl exec`, `attach` and `port-forward`, over the
//! protocols kubectl and the client libraries speak. The HTTP side (`server/streams.rs`)
//! takes the upgrade; here a session runs:
//!
//! - `session.rs`: the streams of an exec or attach, between protocol and runner;
//! - `exec.rs`, `attach.rs`: the runners, a command in a container or the container itself;
//! - `channels.rs`, `remote_command.rs`: exec and attach over WebSocket and over SPDY;
//! - `port_forward.rs`: connections to a pod's ports, over SPDY or WebSocket;
//! - `spdy.rs`, `upgrade.rs`: SPDY/3.1 framing and the HTTP upgrades.

pub mod attach;
pub mod channels;
pub mod exec;
pub mod port_forward;
pub mod remote_command;
pub mod session;
pub mod spdy;
pub mod upgrade;
