//! Exec and attach over SPDY, which kubectl falls back to when a WebSocket cannot be had and
//! older clients use first: the client opens one stream per standard stream, each named by
//! its `streamType` header (`error`, `stdin`, `stdout`, `stderr`, and `resize` for a TTY from
//! v3 on), and the data on each is plain bytes. v4 ends with a Status on the error stream,
//! earlier versions with its text.

use super::channels::JsonLines;
use super::session::{Ends, Outcome};
use super::spdy::{Connection, Stream, StreamWriter};
use std::time::Duration;

/// What this side speaks, preferred first.
pub const PROTOCOLS: [&str; 4] = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

/// How long the client has to open its streams (the kubelet's stream creation timeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait, once the end is written, for the client to close the connection.
const CLIENT_CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The streams the client asked for in the request.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

impl Streams {
    fn complete(&self, wanted: Wanted, resize: bool) -> bool {
        self.error.is_some()
            && (!wanted.stdin || self.stdin.is_some())
            && (!wanted.stdout || self.stdout.is_some())
            && (!wanted.stderr || wanted.tty || self.stderr.is_some())
            && (!resize || self.resize.is_some())
    }
}

/// Serves one session: waits for the client's streams, relays them while `run` runs, then
/// writes its outcome and lets the client close the connection.
pub async fn serve(
    mut conn: Connection,
    protocol: &str,
    wanted: Wanted,
    ends: Ends,
    run: impl Future<Output = Outcome>,
) {
    let resize = wanted.tty && protocol != "v2.channel.k8s.io" && protocol != "channel.k8s.io";
    let mut streams = Streams::default();
    let opened = tokio::time::timeout(STREAM_CREATION_TIMEOUT, async {
        while !streams.complete(wanted, resize) {
            let stream = conn.streams.recv().await?;
            let slot = match stream.header("streamType") {
                Some("error") => &mut streams.error,
                Some("stdin") => &mut streams.stdin,
                Some("stdout") => &mut streams.stdout,
                Some("stderr") => &mut streams.stderr,
                Some("resize") => &mut streams.resize,
                other => {
                    tracing::debug!(stream_type = ?other, "exec over SPDY: ignoring a stream of unknown type");
                    let _ = stream.writer.reset().await;
                    continue;
                }
            };
            stream.writer.reply().await.ok()?;
            *slot = Some(stream);
        }
        Some(())
    })
    .await;
    if !matches!(opened, Ok(Some(()))) {
        tracing::debug!("exec over SPDY: timed out waiting for the client to create streams");
        return;
    }
    let Ends { stdin, stdout, stderr, resize: sizes } = ends;
    let error = streams.error.take().expect("complete");
    // The client's stdin and terminal sizes, to the runner.
    if let (Some(mut from), Some(to)) = (streams.stdin.take(), stdin) {
        tokio::spawn(async move {
            while let Some(data) = from.data.recv().await {
                if to.send(data).await.is_err() {
                    return;
                }
            }
        });
    }
    if let Some(mut from) = streams.resize.take() {
        tokio::spawn(async move {
            let mut lines = JsonLines::default();
            while let Some(data) = from.data.recv().await {
                for size in lines.push(&data) {
                    let _ = sizes.send(size).await;
                }
            }
        });
    }
    let outputs: Vec<(StreamWriter, _)> = [(streams.stdout.take(), stdout), (streams.stderr.take(), stderr)]
        .into_iter()
        .filter_map(|(stream, rx)| Some((stream?.writer, rx)))
        .collect();
    let pumps: Vec<_> = outputs
        .into_iter()
        .map(|(writer, rx)| {
            tokio::spawn(async move {
                if let Some(mut rx) = rx {
                    while let Some(data) = rx.recv().await {
                        if writer.write(data).await.is_err() {
                            return;
                        }
                    }
                }
                // The runner has dropped its end: no more output comes.
                let _ = writer.finish().await;
            })
        })
        .collect();
    let mut run = std::pin::pin!(run);
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            stream = conn.streams.recv() => match stream {
                // The client went away: the session is over.
                None => return,
                Some(extra) => { let _ = extra.writer.reset().await; }
            },
        }
    };
    for pump in pumps {
        let _ = pump.await;
    }
    let end = if protocol == "v4.channel.k8s.io" { outcome.status().to_string() } else { outcome.text() };
    if !end.is_empty() {
        let _ = error.writer.write(end.into()).await;
    }
    let _ = error.writer.finish().await;
    drop(error);
    // The client reads every stream to its end, then closes the connection.
    let _ = tokio::time::timeout(CLIENT_CLOSE_TIMEOUT, async { while conn.streams.recv().await.is_some() {} }).await;
    conn.close().await;
}
