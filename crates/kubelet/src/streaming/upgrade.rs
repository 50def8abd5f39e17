//! Taking over an HTTP/1.1 connection for a streaming protocol: a WebSocket (RFC 6455, with
//! a `Sec-WebSocket-Protocol` chosen from what the client offers) or SPDY/3.1 (with an
//! `X-Stream-Protocol-Version` chosen likewise), as the kubelet's streaming server does.
//!
//! Each function answers with the response to send (101, or the error) and, on success, the
//! connection to use once that response has gone out.

use crate::server::{Body, text};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;
pub type WebSocket = WebSocketStream<Upgraded>;

const STREAM_PROTOCOL: &str = "x-stream-protocol-version";

/// Every value of a header, split at commas, in the order sent.
fn listed(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn upgrade_token<B>(req: &Request<B>) -> String {
    req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase()
}

pub fn is_websocket<B>(req: &Request<B>) -> bool {
    upgrade_token(req).contains("websocket")
}

pub fn is_spdy<B>(req: &Request<B>) -> bool {
    upgrade_token(req).contains("spdy/3.1")
}

/// The WebSocket subprotocols the client offers, in its order of preference.
pub fn websocket_protocols<B>(req: &Request<B>) -> Vec<String> {
    listed(req.headers(), "sec-websocket-protocol")
}

/// The first protocol the client offers that `supported` has.
pub fn choose<'a>(offered: &[String], supported: &[&'a str]) -> Option<&'a str> {
    offered.iter().find_map(|p| supported.iter().find(|s| s.eq_ignore_ascii_case(p)).copied())
}

/// Accepts a WebSocket with `protocol` (none if the client offered none).
pub fn accept_websocket<B>(
    req: &mut Request<B>,
    protocol: Option<&str>,
) -> Result<(Response<Body>, impl Future<Output = Option<WebSocket>> + use<B>), Response<Body>> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return Err(text(400, "missing Sec-WebSocket-Key"));
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(protocol) = protocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    let response = response.body(crate::server::empty()).expect("static response parts are valid");
    let socket = async move {
        let io = upgraded(on_upgrade).await?;
        // client-go writes up to 32 KiB a message; a larger one is not from a client we know.
        let config = WebSocketConfig::default().max_message_size(Some(16 << 20));
        Some(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await)
    };
    Ok((response, socket))
}

/// Accepts a SPDY/3.1 upgrade with the first protocol of `supported` the client offers in
/// `X-Stream-Protocol-Version`; refuses it in the kubelet's words otherwise.
pub fn accept_spdy<B>(
    req: &mut Request<B>,
    supported: &[&'static str],
) -> Result<(Response<Body>, &'static str, impl Future<Output = Option<Upgraded>> + use<B>), Response<Body>> {
    let offered = listed(req.headers(), STREAM_PROTOCOL);
    if offered.is_empty() {
        return Err(text(
            400,
            format!(
                "unable to upgrade: header X-Stream-Protocol-Version does not exist in request with {} headers",
                req.headers().len()
            ),
        ));
    }
    let Some(protocol) = choose(&offered, supported) else {
        let mut refusal = text(
            403,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}"
            ),
        );
        for p in supported {
            refusal.headers_mut().append("x-accepted-stream-protocol-versions", HeaderValue::from_static(p));
        }
        return Err(refusal);
    };
    let on_upgrade = hyper::upgrade::on(req);
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header(STREAM_PROTOCOL, protocol)
        .body(crate::server::empty())
        .expect("static response parts are valid");
    Ok((response, protocol, upgraded(on_upgrade)))
}

/// The message that ends a WebSocket session cleanly: client-go reads a close with any other
/// code as a failure of the session.
pub fn normal_close() -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))
}

async fn upgraded(on_upgrade: OnUpgrade) -> Option<Upgraded> {
    match on_upgrade.await {
        Ok(io) => Some(TokioIo::new(io)),
        Err(e) => {
            tracing::debug!(error = %e, "kubelet API: the connection was not upgraded");
            None
        }
    }
}
