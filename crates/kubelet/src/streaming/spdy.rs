//! The server side of a SPDY/3.1 connection, as kubectl's streaming clients (client-go over
//! moby/spdystream) use it: the client opens streams with SYN_STREAM and headers that say
//! what each is for; the server replies to each, then both sides send DATA, and FIN closes a
//! side. Like spdystream, there is no flow control: SETTINGS and WINDOW_UPDATE are ignored,
//! and a slow reader slows the whole connection through TCP.
//!
//! The bytes come from a plain upgraded connection (`Upgrade: SPDY/3.1`) or from binary
//! WebSocket messages (kubectl's port-forward tunnel); either way they are a stream of byte
//! chunks in and a sink of byte chunks out.

mod frame;
mod headers;

use bytes::{Bytes, BytesMut};
use frame::{FLAG_FIN, Frame};
use futures::{Sink, SinkExt, StreamExt};
use headers::{HeaderDecoder, HeaderEncoder};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    headers: Vec<(String, String)>,
    /// What the client sends on it; ends at its FIN, a reset, or the connection's end.
    pub data: mpsc::Receiver<Bytes>,
    pub writer: StreamWriter,
}

impl Stream {
    /// A header's value; names are matched without regard to case, as SPDY sends them
    /// lowercased.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Writes to one stream; clones write to the same stream.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
}

/// The stream's writer is gone with its connection.
#[derive(Debug)]
pub struct Closed;

impl StreamWriter {
    /// Accepts the stream. spdystream drops data for a stream it has not had a reply for, so
    /// this comes before anything is written.
    pub async fn reply(&self) -> Result<(), Closed> {
        self.out.send(Out::Reply(self.id)).await.map_err(|_| Closed)
    }

    pub async fn write(&self, data: Bytes) -> Result<(), Closed> {
        self.out.send(Out::Data { stream: self.id, data, fin: false }).await.map_err(|_| Closed)
    }

    /// Closes this side of the stream.
    pub async fn finish(&self) -> Result<(), Closed> {
        self.out.send(Out::Data { stream: self.id, data: Bytes::new(), fin: true }).await.map_err(|_| Closed)
    }

    /// Refuses or abandons the stream.
    pub async fn reset(&self) -> Result<(), Closed> {
        self.out.send(Out::Reset(self.id, frame::CANCEL)).await.map_err(|_| Closed)
    }
}

/// What the writer task sends.
enum Out {
    Reply(u32),
    Data { stream: u32, data: Bytes, fin: bool },
    Reset(u32, u32),
    Ping(u32),
    GoAway,
}

/// A connection being served: the streams the client opens arrive on `streams`.
pub struct Connection {
    pub streams: mpsc::Receiver<Stream>,
    out: mpsc::Sender<Out>,
}

impl Connection {
    /// Serves SPDY over these bytes; the tasks end when both sides are done with them.
    pub fn serve<I, O>(input: I, output: O) -> Connection
    where
        I: futures::Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
        O: Sink<Bytes, Error = std::io::Error> + Send + Unpin + 'static,
    {
        let (out, outgoing) = mpsc::channel(64);
        let (opened, streams) = mpsc::channel(16);
        tokio::spawn(read(input, opened, out.clone()));
        tokio::spawn(write(outgoing, output));
        Connection { streams, out }
    }

    /// Says goodbye: GOAWAY, after everything written so far. The connection closes once
    /// every stream's writer is dropped too.
    pub async fn close(self) {
        let _ = self.out.send(Out::GoAway).await;
    }
}

/// Reads frames until the client goes away, routing each stream's data to its receiver.
async fn read<I>(mut input: I, opened: mpsc::Sender<Stream>, out: mpsc::Sender<Out>)
where
    I: futures::Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    let mut decoder = HeaderDecoder::new();
    let mut routes: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut buf = BytesMut::new();
    loop {
        let frame = match Frame::decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => match input.next().await {
                Some(Ok(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    continue;
                }
                _ => return,
            },
            Err(e) => {
                tracing::debug!(error = %e, "SPDY: ending the connection");
                let _ = out.send(Out::GoAway).await;
                return;
            }
        };
        match frame {
            Frame::SynStream { stream, flags, header_block } => {
                let headers = match decoder.decode(&header_block) {
                    Ok(headers) => headers,
                    Err(e) => {
                        tracing::debug!(error = %e, "SPDY: ending the connection");
                        let _ = out.send(Out::Reset(stream, frame::PROTOCOL_ERROR)).await;
                        let _ = out.send(Out::GoAway).await;
                        return;
                    }
                };
                let (sender, data) = mpsc::channel(16);
                if flags & FLAG_FIN == 0 {
                    routes.insert(stream, sender);
                }
                let writer = StreamWriter { id: stream, out: out.clone() };
                if opened.send(Stream { id: stream, headers, data, writer }).await.is_err() {
                    // Nobody takes new streams any more.
                    let _ = out.send(Out::Reset(stream, frame::CANCEL)).await;
                }
            }
            Frame::Data { stream, flags, data } => {
                if !data.is_empty()
                    && let Some(route) = routes.get(&stream)
                    && route.send(data).await.is_err()
                {
                    routes.remove(&stream);
                }
                if flags & FLAG_FIN != 0 {
                    routes.remove(&stream);
                }
            }
            Frame::Headers { stream, flags, .. } if flags & FLAG_FIN != 0 => {
                routes.remove(&stream);
            }
            Frame::RstStream { stream, .. } => {
                routes.remove(&stream);
            }
            // A ping of the client's (odd ids) is answered with the same frame.
            Frame::Ping { id } if id % 2 == 1 => {
                let _ = out.send(Out::Ping(id)).await;
            }
            Frame::GoAway { .. } => return,
            Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Ping { .. } | Frame::Ignored => {}
        }
    }
}

/// Writes frames in the order they were asked for, then closes the output.
async fn write<O>(mut outgoing: mpsc::Receiver<Out>, mut output: O)
where
    O: Sink<Bytes, Error = std::io::Error> + Unpin,
{
    let mut encoder = HeaderEncoder::new();
    let mut buf = BytesMut::new();
    let mut last_stream = 0;
    while let Some(out) = outgoing.recv().await {
        let frame = match out {
            Out::Reply(stream) => {
                last_stream = last_stream.max(stream);
                Frame::SynReply { stream, flags: 0, header_block: encoder.encode(&[]) }
            }
            Out::Data { stream, data, fin } => Frame::Data { stream, flags: if fin { FLAG_FIN } else { 0 }, data },
            Out::Reset(stream, status) => Frame::RstStream { stream, status },
            Out::Ping(id) => Frame::Ping { id },
            Out::GoAway => Frame::GoAway { last_good: last_stream, status: 0 },
        };
        frame.encode(&mut buf);
        let goodbye = matches!(frame, Frame::GoAway { .. });
        if output.send(buf.split().freeze()).await.is_err() || goodbye {
            break;
        }
    }
    let _ = output.close().await;
}

/// The input and output of a plain upgraded connection.
pub fn over_io<T>(
    io: T,
) -> (
    impl futures::Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    impl Sink<Bytes, Error = std::io::Error> + Send + Unpin + 'static,
)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use tokio_util::codec::{BytesCodec, FramedRead, FramedWrite};
    let (read, write) = tokio::io::split(io);
    let input = FramedRead::new(read, BytesCodec::new()).map(|chunk| chunk.map(BytesMut::freeze));
    (input, FramedWrite::new(write, BytesCodec::new()))
}

/// The input and output of SPDY tunnelled in a WebSocket (kubectl's port-forward): binary
/// messages carry the bytes, their boundaries meaning nothing; the tunnel ends with a normal
/// close, which the client reads as the end of the connection.
pub fn over_websocket(
    socket: super::upgrade::WebSocket,
) -> (
    impl futures::Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    impl Sink<Bytes, Error = std::io::Error> + Send + Unpin + 'static,
) {
    use tokio_tungstenite::tungstenite::Message;
    let (mut sink, source) = socket.split();
    let input = source.take_while(|m| std::future::ready(!matches!(m, Ok(Message::Close(_))))).filter_map(|m| {
        std::future::ready(match m {
            Ok(Message::Binary(bytes)) => Some(Ok(bytes)),
            Ok(_) => None,
            Err(e) => Some(Err(std::io::Error::other(e))),
        })
    });
    let (output, mut outgoing) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        while let Some(bytes) = outgoing.recv().await {
            if sink.send(Message::Binary(bytes)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(super::upgrade::normal_close()).await;
    });
    let output = tokio_util::sync::PollSender::new(output).sink_map_err(|_| std::io::Error::other("the tunnel closed"));
    (Box::pin(input), output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client written from the frame layer, as spdystream behaves on the wire.
    struct Client {
        to_server: tokio::io::DuplexStream,
        from_server: BytesMut,
        encoder: HeaderEncoder,
    }

    impl Client {
        async fn send(&mut self, frame: Frame) {
            use tokio::io::AsyncWriteExt;
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            // In small pieces, as spdystream writes each field on its own.
            for piece in buf.chunks(5) {
                self.to_server.write_all(piece).await.unwrap();
            }
        }

        async fn open(&mut self, stream: u32, headers: &[(&str, &str)]) {
            let header_block = self.encoder.encode(headers);
            self.send(Frame::SynStream { stream, flags: 0, header_block }).await;
        }

        async fn next(&mut self) -> Option<Frame> {
            use tokio::io::AsyncReadExt;
            loop {
                if let Some(frame) = Frame::decode(&mut self.from_server).unwrap() {
                    return Some(frame);
                }
                let mut chunk = [0u8; 1024];
                let n = self.to_server.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return None;
                }
                self.from_server.extend_from_slice(&chunk[..n]);
            }
        }
    }

    #[tokio::test]
    async fn streams_open_carry_data_both_ways_and_close() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let (input, output) = over_io(server_io);
        let mut conn = Connection::serve(input, output);
        let mut client = Client { to_server: client_io, from_server: BytesMut::new(), encoder: HeaderEncoder::new() };

        client.open(1, &[("streamType", "data"), ("port", "80"), ("requestID", "0")]).await;
        let mut stream = conn.streams.recv().await.unwrap();
        assert_eq!((stream.id, stream.header("streamtype"), stream.header("requestID")), (1, Some("data"), Some("0")));
        stream.writer.reply().await.unwrap();
        assert!(matches!(client.next().await, Some(Frame::SynReply { stream: 1, .. })));

        client.send(Frame::Data { stream: 1, flags: 0, data: Bytes::from_static(b"ping") }).await;
        assert_eq!(stream.data.recv().await.unwrap(), Bytes::from_static(b"ping"));
        client.send(Frame::Data { stream: 1, flags: FLAG_FIN, data: Bytes::new() }).await;
        assert_eq!(stream.data.recv().await, None, "FIN is the end of the stream's data");

        client.send(Frame::Ping { id: 1 }).await;
        assert_eq!(client.next().await, Some(Frame::Ping { id: 1 }));

        stream.writer.write(Bytes::from_static(b"pong")).await.unwrap();
        stream.writer.finish().await.unwrap();
        assert_eq!(client.next().await, Some(Frame::Data { stream: 1, flags: 0, data: Bytes::from_static(b"pong") }));
        assert_eq!(client.next().await, Some(Frame::Data { stream: 1, flags: FLAG_FIN, data: Bytes::new() }));

        drop(stream);
        conn.close().await;
        assert_eq!(client.next().await, Some(Frame::GoAway { last_good: 1, status: 0 }));
        assert_eq!(client.next().await, None, "the connection closes after GOAWAY");
    }
}
