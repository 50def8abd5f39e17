//! Exec and attach over a WebSocket: the channel.k8s.io protocols. Each message's first byte
//! is its channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize) and the rest its data; the
//! base64 variants send text messages, with the channel as an ASCII digit and the data in
//! base64. v4 writes the session's end as a Status on the error channel; v5 adds a message
//! `FF <channel>` by which the client closes a channel (its stdin's end of file).

use super::session::{Ends, Outcome, TerminalSize};
use super::upgrade::WebSocket;
use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What this side speaks, in the order it prefers them when a client offers several.
pub const PROTOCOLS: [&str; 5] =
    ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `FF <channel>` closes the channel.
const CLOSE: u8 = 255;

/// Which of the protocols was agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flavor {
    base64: bool,
    /// The end is a Status (v4 and later), not plain text.
    status: bool,
    /// Clients may close channels (v5).
    close: bool,
}

impl Flavor {
    /// The flavor of an agreed protocol; no protocol at all is channel.k8s.io.
    pub fn of(protocol: Option<&str>) -> Flavor {
        let p = protocol.unwrap_or("channel.k8s.io");
        Flavor {
            base64: p.contains("base64"),
            status: p.starts_with("v4.") || p.starts_with("v5."),
            close: p.starts_with("v5."),
        }
    }

    fn message(self, channel: u8, data: &[u8]) -> Message {
        if self.base64 {
            let mut text = String::from(char::from(b'0' + channel));
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
            return Message::text(text);
        }
        let mut bytes = Vec::with_capacity(1 + data.len());
        bytes.push(channel);
        bytes.extend_from_slice(data);
        Message::binary(bytes)
    }

    /// A received message's channel and data; None for one that is not data.
    fn decode(self, message: Message) -> Option<(u8, Vec<u8>)> {
        let raw: Vec<u8> = match message {
            Message::Binary(b) => b.to_vec(),
            // The Python client sends text with a raw channel byte; the base64 flavors, a digit.
            Message::Text(t) if self.base64 => {
                let t = t.as_str();
                let channel = t.as_bytes().first()?.checked_sub(b'0')?;
                let data = base64::engine::general_purpose::STANDARD.decode(&t[1..]).ok()?;
                return Some((channel, data));
            }
            Message::Text(t) => t.as_bytes().to_vec(),
            _ => return None,
        };
        let (&channel, data) = raw.split_first()?;
        Some((channel, data.to_vec()))
    }
}

/// Receives from an optional channel, forever pending once it has none or it has closed.
pub async fn recv_from<T>(rx: &mut Option<mpsc::Receiver<T>>) -> T {
    if let Some(r) = rx.as_mut()
        && let Some(item) = r.recv().await
    {
        return item;
    }
    *rx = None;
    std::future::pending().await
}

/// Serves one session over `socket` until `run` ends it (or the client leaves, which drops
/// `run`), then writes its outcome on the error channel and closes the socket normally: a
/// close with another code reads as a failure to client-go.
pub async fn serve(socket: WebSocket, flavor: Flavor, ends: Ends, run: impl Future<Output = Outcome>) {
    let (mut sink, mut source) = socket.split();
    let Ends { mut stdin, stdout, stderr, resize } = ends;
    // The kubelet opens with an empty message on its first writable channel.
    let first = if stdout.is_some() {
        STDOUT
    } else if stderr.is_some() {
        STDERR
    } else {
        ERROR
    };
    if sink.send(flavor.message(first, &[])).await.is_err() {
        return;
    }
    let (mut stdout, mut stderr) = (stdout, stderr);
    let mut sizes = JsonLines::default();
    let mut run = std::pin::pin!(run);
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            data = recv_from(&mut stdout) => if sink.send(flavor.message(STDOUT, &data)).await.is_err() { return },
            data = recv_from(&mut stderr) => if sink.send(flavor.message(STDERR, &data)).await.is_err() { return },
            message = source.next() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(message)) => match flavor.decode(message) {
                    Some((STDIN, data)) => if let Some(tx) = &stdin && !data.is_empty() {
                        // A runner gone means the command no longer reads: drop what comes.
                        if tx.send(Bytes::from(data)).await.is_err() { stdin = None }
                    },
                    Some((RESIZE, data)) => for size in sizes.push(&data) {
                        let _ = resize.send(size).await;
                    },
                    Some((CLOSE, data)) if flavor.close && data == [STDIN] => stdin = None,
                    _ => {}
                },
            },
        }
    };
    // What the runner wrote before it ended goes out before the end.
    for (rx, channel) in [(stdout, STDOUT), (stderr, STDERR)] {
        if let Some(mut rx) = rx {
            while let Some(data) = rx.recv().await {
                if sink.send(flavor.message(channel, &data)).await.is_err() {
                    return;
                }
            }
        }
    }
    let end = if flavor.status { outcome.status().to_string() } else { outcome.text() };
    if !end.is_empty() && sink.send(flavor.message(ERROR, end.as_bytes())).await.is_err() {
        return;
    }
    let _ = sink.send(super::upgrade::normal_close()).await;
    // The client answers the close; wait for it (briefly) so that the close is not lost.
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), async { while source.next().await.is_some() {} }).await;
}

/// The resize channel: a stream of JSON objects, which messages may split anywhere.
#[derive(Default)]
pub struct JsonLines {
    buf: Vec<u8>,
}

impl JsonLines {
    /// Adds bytes; returns the sizes now complete.
    pub fn push(&mut self, data: &[u8]) -> Vec<TerminalSize> {
        self.buf.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<TerminalSize>();
        let mut used = 0;
        while let Some(size) = stream.next() {
            match size {
                Ok(size) => {
                    sizes.push(size);
                    used = stream.byte_offset();
                }
                // Part of an object: wait for the rest. Anything else cannot be read: drop it.
                Err(e) if e.is_eof() => break,
                Err(_) => {
                    used = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..used);
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_frame_as_their_protocols_say() {
        let v5 = Flavor::of(Some("v5.channel.k8s.io"));
        assert_eq!((v5.base64, v5.status, v5.close), (false, true, true));
        assert_eq!(v5.message(STDOUT, b"hi"), Message::binary(vec![1, b'h', b'i']));
        assert_eq!(v5.decode(Message::binary(vec![CLOSE, STDIN])), Some((CLOSE, vec![STDIN])));
        // Python sends stdin typed as a string in a text message with a raw channel byte.
        assert_eq!(v5.decode(Message::text("\u{0}ls\n")), Some((STDIN, b"ls\n".to_vec())));

        let b64 = Flavor::of(Some("v4.base64.channel.k8s.io"));
        assert_eq!(b64.message(STDERR, b"hi"), Message::text("2aGk="));
        assert_eq!(b64.decode(Message::text("0aGk=")), Some((STDIN, b"hi".to_vec())));
        assert!(!Flavor::of(None).status && !Flavor::of(None).close);
    }

    #[test]
    fn sizes_are_read_across_messages() {
        let mut lines = JsonLines::default();
        assert_eq!(lines.push(b"{\"Width\":80,\"Hei"), []);
        assert_eq!(
            lines.push(b"ght\":24}\n{\"Width\":100,\"Height\":30}\n"),
            [TerminalSize { width: 80, height: 24 }, TerminalSize { width: 100, height: 30 }]
        );
        assert_eq!(lines.push(b"garbage"), []);
        assert_eq!(lines.push(b"{\"Width\":1,\"Height\":2}"), [TerminalSize { width: 1, height: 2 }]);
    }
}
