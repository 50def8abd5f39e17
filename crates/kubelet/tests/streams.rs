//! Exec, attach and port-forward over WebSockets against the kubelet API, with real TLS and a
//! fake pod (`common::FakePods`): the channel protocols as client-go and the Python client
//! speak them. (SPDY is exercised end to end with kubectl in e2e/test_pods_streams.py.)

mod common;

use base64::Engine;
use common::{Fixture, start};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Socket = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn websocket(f: &Fixture, path: &str, protocol: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let tls = common::connect(f.addr, f.client.as_ref()).await.unwrap();
    let mut request = format!("wss://node-1{path}").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::client_async(request, tls).await?;
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    Ok(socket)
}

/// Every data message until the server closes the socket, and the close's code.
async fn rest(socket: &mut Socket) -> (Vec<Message>, Option<CloseCode>) {
    let mut messages = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a message in time");
        match next {
            Some(Ok(Message::Close(frame))) => return (messages, frame.map(|f| f.code)),
            Some(Ok(m @ (Message::Binary(_) | Message::Text(_)))) => messages.push(m),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close: {other:?}"),
        }
    }
}

fn binary(channel: u8, data: &[u8]) -> Message {
    Message::binary([&[channel][..], data].concat())
}

fn status(message: &Message) -> Value {
    serde_json::from_slice(&message.clone().into_data()[1..]).unwrap()
}

#[tokio::test]
async fn exec_over_v5_writes_output_then_success_then_a_normal_close() {
    let f = start().await;
    let mut socket =
        websocket(&f, "/exec/default/web/app?command=echo&command=hi&output=1&error=1", "v5.channel.k8s.io")
            .await
            .unwrap();
    let (messages, close) = rest(&mut socket).await;
    // The kubelet opens with an empty message on the first writable channel.
    assert_eq!(messages[..2], [binary(1, b""), binary(1, b"hi\n")]);
    assert_eq!(status(&messages[2]), json!({"metadata": {}, "status": "Success"}));
    assert_eq!(close, Some(CloseCode::Normal));
}

#[tokio::test]
async fn stdin_flows_until_the_client_closes_it() {
    let f = start().await;
    let mut socket =
        websocket(&f, "/exec/default/web/app?command=cat&input=1&output=1", "v5.channel.k8s.io").await.unwrap();
    socket.send(binary(0, b"one ")).await.unwrap();
    socket.send(binary(0, b"two")).await.unwrap();
    // v5's close message: channel 255, then the channel closed.
    socket.send(Message::binary(vec![255, 0])).await.unwrap();
    let (messages, close) = rest(&mut socket).await;
    let out: Vec<u8> =
        messages[1..messages.len() - 1].iter().flat_map(|m| m.clone().into_data()[1..].to_vec()).collect();
    assert_eq!(out, b"one two");
    assert_eq!(status(messages.last().unwrap())["status"], "Success");
    assert_eq!(close, Some(CloseCode::Normal));
}

#[tokio::test]
async fn a_non_zero_exit_is_a_status_with_its_code() {
    let f = start().await;
    let mut socket =
        websocket(&f, "/exec/default/web/app?command=fail&output=1&error=1", "v4.channel.k8s.io").await.unwrap();
    let (messages, _) = rest(&mut socket).await;
    assert_eq!(messages[1], binary(2, b"oops\n"));
    assert_eq!(
        status(&messages[2]),
        json!({
            "metadata": {},
            "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command [fail], exit code 3",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        })
    );
}

#[tokio::test]
async fn a_tty_session_takes_terminal_sizes() {
    let f = start().await;
    let mut socket =
        websocket(&f, "/exec/default/web/app?command=size&input=1&output=1&tty=1", "v5.channel.k8s.io").await.unwrap();
    // As client-go encodes it, split across two messages.
    socket.send(binary(4, b"{\"Width\":80,")).await.unwrap();
    socket.send(binary(4, b"\"Height\":24}\n")).await.unwrap();
    let (messages, _) = rest(&mut socket).await;
    assert_eq!(messages[1], binary(1, b"80x24"));
}

#[tokio::test]
async fn the_base64_flavor_sends_text() {
    let f = start().await;
    let mut socket =
        websocket(&f, "/attach/default/web/app?input=1&output=1", "v4.base64.channel.k8s.io").await.unwrap();
    let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
    socket.send(Message::text(format!("0{}", b64(b"typed")))).await.unwrap();
    // Without v5's close message, the session ends when the client goes: here, after the echo.
    let first = socket.next().await.unwrap().unwrap();
    assert_eq!(first, Message::text("1"));
    assert_eq!(socket.next().await.unwrap().unwrap(), Message::text(format!("1{}", b64(b"typed"))));
}

#[tokio::test]
async fn port_forward_over_channels_reaches_the_port() {
    let f = start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let (mut read, mut write) = conn.split();
        tokio::io::copy(&mut read, &mut write).await.unwrap();
    });
    let mut socket =
        websocket(&f, &format!("/portForward/default/web?port={port}"), "v4.channel.k8s.io").await.unwrap();
    let [lo, hi] = port.to_le_bytes();
    // Each of the port's channels opens with the port.
    assert_eq!(socket.next().await.unwrap().unwrap(), Message::binary(vec![0, lo, hi]));
    assert_eq!(socket.next().await.unwrap().unwrap(), Message::binary(vec![1, lo, hi]));
    socket.send(binary(0, b"hello")).await.unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < 5 {
        let data = socket.next().await.unwrap().unwrap().into_data();
        assert_eq!(data[0], 0);
        echoed.extend_from_slice(&data[1..]);
    }
    assert_eq!(echoed, b"hello");
}

#[tokio::test]
async fn port_forward_to_a_closed_port_says_why_on_the_error_channel() {
    let f = start().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut socket =
        websocket(&f, &format!("/portForward/default/web?port={port}"), "v4.channel.k8s.io").await.unwrap();
    let (messages, close) = rest(&mut socket).await;
    let error = String::from_utf8(messages[2].clone().into_data()[1..].to_vec()).unwrap();
    assert_eq!(messages[2].clone().into_data()[0], 1);
    assert!(error.starts_with(&format!("error forwarding port {port} to pod web, uid uid-1: ")), "{error}");
    assert_eq!(close, Some(CloseCode::Normal));
}

#[tokio::test]
async fn refusals_come_before_the_upgrade() {
    let f = start().await;
    let status = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("not an HTTP refusal: {other}"),
    };
    let e = websocket(&f, "/exec/default/nope/app?command=echo&output=1", "v5.channel.k8s.io").await.unwrap_err();
    assert_eq!(status(e), 404);
    let e = websocket(&f, "/exec/default/web/app?command=echo", "v5.channel.k8s.io").await.unwrap_err();
    assert_eq!(status(e), 400);
    let e = websocket(&f, "/exec/default/web/app?command=echo&output=1", "v9.channel.k8s.io").await.unwrap_err();
    assert_eq!(status(e), 403);
}
