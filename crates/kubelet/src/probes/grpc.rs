//! gRPC probes: one call of the standard health service, `grpc.health.v1.Health/Check`,
//! over plaintext HTTP/2 to the pod's address, passing when the answer is SERVING. The
//! failure messages are the kubelet's, so `kubectl describe` reads the same.
//!
//! The request and answer are one field each, so they are encoded here rather than through
//! a protobuf code generator: a message is a 5-byte gRPC prefix (compression flag, length)
//! and the protobuf bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// grpc-status codes the kubelet tells apart.
const UNIMPLEMENTED: u32 = 12;
/// HealthCheckResponse.ServingStatus names, by number.
const SERVING_STATUS: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// Asks the health service at `host:port` about `service` ("" for the server as a whole).
pub async fn check(host: &str, port: u16, service: &str) -> Result<(), String> {
    let address = format!("{host}:{port}");
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("timeout: failed to connect service {address:?}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|e| format!("timeout: failed to connect service {address:?}: {e}"))?;
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{address}{CHECK_PATH}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "kube-probe/1.37")
        .body(Full::new(frame(&request_message(service))))
        .map_err(|e| e.to_string())?;
    let failed = |e: &dyn std::fmt::Display| format!("error: health rpc probe failed: {e}");
    let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.map_err(|e| failed(&e))?;
    // A call that failed at once may carry its status in the headers alone.
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status_of = |name: &str| trailers.get(name).or(parts.headers.get(name)).and_then(|v| v.to_str().ok());
    let code: u32 = status_of("grpc-status").and_then(|s| s.parse().ok()).unwrap_or(2);
    if code != 0 {
        let message = status_of("grpc-message").unwrap_or("");
        return Err(match code {
            UNIMPLEMENTED => format!(
                "this server doesn't implement the grpc health protocol (grpc.health.v1.Health): rpc error: code = Unimplemented desc = {message}"
            ),
            _ => failed(&format!("rpc error: code = {code} desc = {message}")),
        });
    }
    match serving_status(collected.to_bytes()) {
        Some(1) => Ok(()),
        status => {
            let name = status.and_then(|s| SERVING_STATUS.get(s as usize)).unwrap_or(&"UNKNOWN");
            Err(format!("service unhealthy (responded with {name:?})"))
        }
    }
}

/// HealthCheckRequest: field 1, the service name, left out when empty (protobuf's default).
fn request_message(service: &str) -> Vec<u8> {
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a); // field 1, length-delimited
        put_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    message
}

/// One gRPC message: uncompressed, its length, its bytes.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(message);
    framed.freeze()
}

/// The `status` field (1, a varint) of the HealthCheckResponse in a framed answer; fields
/// it does not know are skipped, as protobuf readers do.
fn serving_status(mut body: Bytes) -> Option<u64> {
    if body.remaining() < 5 || body.get_u8() != 0 {
        return None;
    }
    let length = body.get_u32() as usize;
    let mut message = body.get(..length)?;
    let mut status = 0; // protobuf's default: UNKNOWN
    while !message.is_empty() {
        let key = varint(&mut message)?;
        match key & 7 {
            0 => {
                let value = varint(&mut message)?;
                if key >> 3 == 1 {
                    status = value;
                }
            }
            1 => message = message.get(8..)?,
            2 => {
                let len = varint(&mut message)? as usize;
                message = message.get(len..)?;
            }
            5 => message = message.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_service_only_when_there_is_one() {
        assert!(request_message("").is_empty());
        assert_eq!(request_message("db"), b"\x0a\x02db");
        assert_eq!(&frame(b"\x0a\x02db")[..], b"\x00\x00\x00\x00\x04\x0a\x02db");
    }

    #[test]
    fn answers_are_read_past_unknown_fields() {
        assert_eq!(serving_status(frame(b"\x08\x01")), Some(1));
        assert_eq!(serving_status(frame(b"\x12\x03abc\x08\x02")), Some(2));
        // An empty message is the default, UNKNOWN.
        assert_eq!(serving_status(frame(b"")), Some(0));
        // Truncated or compressed answers are not understood.
        assert_eq!(serving_status(Bytes::from_static(b"\x00\x00\x00\x00\x05\x08")), None);
        assert_eq!(serving_status(Bytes::from_static(b"\x01\x00\x00\x00\x00")), None);
        let mut long = Vec::new();
        put_varint(&mut long, 300);
        assert_eq!(varint(&mut long.as_slice()), Some(300));
    }
}
