//! `kubectl port-forward` and the client libraries' port forwarding: connections to ports of
//! a pod, relayed over one of two protocols.
//!
//! - portforward.k8s.io over SPDY (kubectl, directly or tunnelled in a WebSocket): for each
//!   connection the client opens an `error` stream and a `data` stream, both with `port` and
//!   `requestID` headers; the data stream carries the connection's bytes both ways, and the
//!   error stream a message if the port cannot be reached.
//! - v4.channel.k8s.io over a WebSocket (the Python client): the ports are in the query, two
//!   channels each (data 2i, error 2i+1), each opened by the server with its port number.

use super::spdy::{Connection, Stream};
use super::upgrade::WebSocket;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The SPDY protocol, and kubectl's WebSocket tunnel of it.
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The WebSocket protocols of the channel flavor.
pub const CHANNEL_PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "portforward.k8s.io"];

/// How long the client has to open both streams of a connection.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The pod whose ports are reached.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub uid: String,
    /// Its network namespace (None: the host's).
    pub netns: Option<PathBuf>,
}

impl Target {
    fn failure(&self, port: u16, e: impl std::fmt::Display) -> String {
        format!("error forwarding port {port} to pod {}, uid {}: {e}", self.name, self.uid)
    }
}

/// The streams of one forwarded connection, as they arrive.
struct Pair {
    port: u16,
    error: Option<Stream>,
    data: Option<Stream>,
    opened: tokio::time::Instant,
}

/// Serves portforward.k8s.io over a SPDY connection until the client closes it.
pub async fn serve_spdy(mut conn: Connection, target: Target) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let stream = tokio::select! {
            stream = conn.streams.recv() => match stream {
                Some(stream) => stream,
                None => break,
            },
            _ = sweep.tick() => {
                expire(&mut pairs).await;
                continue;
            }
        };
        let port = stream.header("port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
        let kind = stream.header("streamType").map(str::to_string);
        let (Some(port), Some("error" | "data")) = (port, kind.as_deref()) else {
            tracing::debug!(?kind, "port-forward: refusing a stream without a valid port and type");
            let _ = stream.writer.reset().await;
            continue;
        };
        // Without a requestID (very old clients), the pair's ids tell which go together.
        let request = stream.header("requestID").map(str::to_string).unwrap_or_else(|| {
            let error_id = if kind.as_deref() == Some("data") { stream.id.saturating_sub(2) } else { stream.id };
            error_id.to_string()
        });
        if stream.writer.reply().await.is_err() {
            break;
        }
        let pair = pairs.entry(request.clone()).or_insert(Pair {
            port,
            error: None,
            data: None,
            opened: tokio::time::Instant::now(),
        });
        let slot = if kind.as_deref() == Some("error") { &mut pair.error } else { &mut pair.data };
        if slot.is_some() {
            let message = format!(
                "error processing stream for request {request}: {} stream already assigned",
                kind.unwrap_or_default()
            );
            if let Some(error) = &pair.error {
                let _ = error.writer.write(message.into()).await;
            }
            let _ = stream.writer.reset().await;
            continue;
        }
        *slot = Some(stream);
        if pair.error.is_some() && pair.data.is_some() {
            let pair = pairs.remove(&request).expect("just filled");
            let (error, data) = (pair.error.expect("checked"), pair.data.expect("checked"));
            tokio::spawn(forward_pair(target.clone(), pair.port, error, data));
        }
    }
    conn.close().await;
}

/// Tells the client of connections whose second stream never came.
async fn expire(pairs: &mut HashMap<String, Pair>) {
    let expired: Vec<String> =
        pairs.iter().filter(|(_, p)| p.opened.elapsed() >= STREAM_CREATION_TIMEOUT).map(|(r, _)| r.clone()).collect();
    for request in expired {
        let pair = pairs.remove(&request).expect("listed");
        if let Some(error) = pair.error {
            let _ = error.writer.write(format!("(request {request}) timed out waiting for streams").into()).await;
            let _ = error.writer.finish().await;
        }
        if let Some(data) = pair.data {
            let _ = data.writer.reset().await;
        }
    }
}

/// Relays one connection between its data stream and the pod's port.
async fn forward_pair(target: Target, port: u16, error: Stream, data: Stream) {
    let tcp = match runtime::dial::connect(target.netns.as_deref(), port).await {
        Ok(tcp) => tcp,
        Err(e) => {
            let _ = error.writer.write(target.failure(port, e).into()).await;
            let _ = error.writer.finish().await;
            let _ = data.writer.finish().await;
            return;
        }
    };
    let writer = data.writer.clone();
    relay(tcp, data.data, |chunk| {
        let writer = writer.clone();
        async move { writer.write(chunk).await.is_ok() }
    })
    .await;
    let _ = data.writer.finish().await;
    let _ = error.writer.finish().await;
}

/// Copies between a pod's port and the client until the pod's side of the connection ends
/// (or the client stops taking what it sends): the client's end of file is passed on to the
/// pod, which may still answer.
async fn relay<F, Sent>(tcp: TcpStream, mut from_client: mpsc::Receiver<Bytes>, mut to_client: F)
where
    F: FnMut(Bytes) -> Sent,
    Sent: Future<Output = bool>,
{
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let inbound = async move {
        while let Some(chunk) = from_client.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
        std::future::pending::<()>().await
    };
    let outbound = async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = from_pod.read(&mut buf).await {
            if n == 0 || !to_client(Bytes::copy_from_slice(&buf[..n])).await {
                return;
            }
        }
    };
    tokio::select! {
        () = outbound => {}
        () = inbound => {}
    }
}

/// Serves the channel flavor over a WebSocket for the ports asked for, until every
/// connection has ended or the client leaves.
pub async fn serve_websocket(socket: WebSocket, target: Target, ports: Vec<u16>) {
    let (mut sink, mut source) = socket.split();
    // Each channel opens with its number and the port, little-endian.
    for (i, port) in ports.iter().enumerate() {
        for channel in [2 * i as u8, 2 * i as u8 + 1] {
            let [lo, hi] = port.to_le_bytes();
            if sink.send(Message::binary(vec![channel, lo, hi])).await.is_err() {
                return;
            }
        }
    }
    let (out, mut outgoing) = mpsc::channel::<(u8, Bytes)>(16);
    let mut to_pods: Vec<Option<mpsc::Sender<Bytes>>> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (tx, rx) = mpsc::channel(16);
        to_pods.push(Some(tx));
        tokio::spawn(forward_channel(target.clone(), *port, 2 * i as u8, rx, out.clone()));
    }
    drop(out);
    loop {
        tokio::select! {
            sent = outgoing.recv() => match sent {
                Some((channel, data)) => {
                    let message = [&[channel][..], &data].concat();
                    if sink.send(Message::binary(message)).await.is_err() { return }
                }
                // Every connection has ended.
                None => break,
            },
            message = source.next() => match message {
                Some(Ok(Message::Binary(b))) => {
                    if let Some((&channel, data)) = b.split_first()
                        && channel % 2 == 0
                        && let Some(Some(tx)) = to_pods.get(channel as usize / 2)
                        && tx.send(Bytes::copy_from_slice(data)).await.is_err()
                    {
                        to_pods[channel as usize / 2] = None;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = sink.send(super::upgrade::normal_close()).await;
}

/// One port of the channel flavor: its connection's bytes on `channel`, and a failure on the
/// channel after it.
async fn forward_channel(
    target: Target,
    port: u16,
    channel: u8,
    from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<(u8, Bytes)>,
) {
    let tcp: TcpStream = match runtime::dial::connect(target.netns.as_deref(), port).await {
        Ok(tcp) => tcp,
        Err(e) => {
            let _ = out.send((channel + 1, target.failure(port, e).into())).await;
            return;
        }
    };
    relay(tcp, from_client, |chunk| {
        let out = out.clone();
        async move { out.send((channel, chunk)).await.is_ok() }
    })
    .await;
}
