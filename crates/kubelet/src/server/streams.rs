//! `/exec`, `/attach` and `/portForward`: the streaming endpoints. Each finds what the
//! request is for (errors come back as plain HTTP, before any upgrade), takes the connection
//! over with the protocol the client asked for, and runs the session in a task of its own.
//!
//! Exec and attach read the kubelet's query: `command` (repeated), and `input`, `output`,
//! `error` and `tty` for the streams wanted. Port-forward over the WebSocket channel protocol
//! reads the ports from `port` (repeated, or separated by commas).

use super::{Body, PodError, Pods, Runner, text};
use crate::streaming::port_forward::{self, Target};
use crate::streaming::remote_command::{self, Wanted};
use crate::streaming::spdy::{self, Connection};
use crate::streaming::upgrade::{self, choose};
use crate::streaming::{channels, session};
use http::{Request, Response};
use hyper::body::Incoming;

fn params(req: &Request<Incoming>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect()
}

/// Kubernetes' rule for a boolean in a query: present and not `0` or `false`.
fn flag(params: &[(String, String)], name: &str) -> bool {
    params.iter().any(|(k, v)| k == name && v != "0" && !v.eq_ignore_ascii_case("false"))
}

fn refused(e: PodError) -> Response<Body> {
    text(e.status, e.message)
}

pub fn exec(req: Request<Incoming>, pods: &dyn Pods, namespace: &str, pod: &str, container: &str) -> Response<Body> {
    let params = params(&req);
    let command: Vec<String> = params.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
    if command.is_empty() {
        return text(400, "you must specify a command to run");
    }
    session(req, &params, || pods.exec(namespace, pod, container, command))
}

pub fn attach(req: Request<Incoming>, pods: &dyn Pods, namespace: &str, pod: &str, container: &str) -> Response<Body> {
    let params = params(&req);
    session(req, &params, || pods.attach(namespace, pod, container))
}

/// An exec or attach: the runner found, then the protocol the client speaks.
fn session(
    mut req: Request<Incoming>,
    params: &[(String, String)],
    find: impl FnOnce() -> Result<Runner, PodError>,
) -> Response<Body> {
    let wanted = Wanted {
        stdin: flag(params, "input"),
        stdout: flag(params, "output"),
        stderr: flag(params, "error"),
        tty: flag(params, "tty"),
    };
    if !(wanted.stdin || wanted.stdout || wanted.stderr) {
        return text(400, "you must specify at least 1 of stdin, stdout, stderr");
    }
    let runner = match find() {
        Ok(runner) => runner,
        Err(e) => return refused(e),
    };
    let (ends, session) = session::open(wanted.stdin, wanted.stdout, wanted.stderr, wanted.tty);
    if upgrade::is_websocket(&req) {
        let offered = upgrade::websocket_protocols(&req);
        let protocol = choose(&offered, &channels::PROTOCOLS);
        if protocol.is_none() && !offered.is_empty() {
            return text(403, format!("none of the offered protocols {offered:?} is supported"));
        }
        return match upgrade::accept_websocket(&mut req, protocol) {
            Err(refusal) => refusal,
            Ok((response, socket)) => {
                tokio::spawn(async move {
                    if let Some(socket) = socket.await {
                        channels::serve(socket, channels::Flavor::of(protocol), ends, runner(session)).await;
                    }
                });
                response
            }
        };
    }
    if upgrade::is_spdy(&req) {
        return match upgrade::accept_spdy(&mut req, &remote_command::PROTOCOLS) {
            Err(refusal) => refusal,
            Ok((response, protocol, io)) => {
                tokio::spawn(async move {
                    if let Some(io) = io.await {
                        let (input, output) = spdy::over_io(io);
                        let conn = Connection::serve(input, output);
                        remote_command::serve(conn, protocol, wanted, ends, runner(session)).await;
                    }
                });
                response
            }
        };
    }
    text(400, "Upgrade request required")
}

pub fn port_forward(mut req: Request<Incoming>, pods: &dyn Pods, namespace: &str, pod: &str) -> Response<Body> {
    let target: Target = match pods.port_forward(namespace, pod) {
        Ok(target) => target,
        Err(e) => return refused(e),
    };
    if upgrade::is_websocket(&req) {
        let offered = upgrade::websocket_protocols(&req);
        // kubectl: SPDY carried in binary messages.
        if let Some(tunnel) = choose(&offered, &[port_forward::TUNNEL_PROTOCOL]) {
            return match upgrade::accept_websocket(&mut req, Some(tunnel)) {
                Err(refusal) => refusal,
                Ok((response, socket)) => {
                    tokio::spawn(async move {
                        if let Some(socket) = socket.await {
                            let (input, output) = spdy::over_websocket(socket);
                            port_forward::serve_spdy(Connection::serve(input, output), target).await;
                        }
                    });
                    response
                }
            };
        }
        let Some(protocol) = choose(&offered, &port_forward::CHANNEL_PROTOCOLS) else {
            return text(403, format!("none of the offered protocols {offered:?} is supported"));
        };
        let ports: Result<Vec<u16>, _> = params(&req)
            .iter()
            .filter(|(k, _)| k == "port")
            .flat_map(|(_, v)| v.split(',').map(|p| p.trim().parse::<u16>()).collect::<Vec<_>>())
            .collect();
        let ports = match ports {
            Ok(ports) if !ports.is_empty() && !ports.contains(&0) => ports,
            _ => return text(400, "query parameter \"port\" is required: one or more ports from 1 to 65535"),
        };
        return match upgrade::accept_websocket(&mut req, Some(protocol)) {
            Err(refusal) => refusal,
            Ok((response, socket)) => {
                tokio::spawn(async move {
                    if let Some(socket) = socket.await {
                        port_forward::serve_websocket(socket, target, ports).await;
                    }
                });
                response
            }
        };
    }
    if upgrade::is_spdy(&req) {
        return match upgrade::accept_spdy(&mut req, &[port_forward::SPDY_PROTOCOL]) {
            Err(refusal) => refusal,
            Ok((response, _, io)) => {
                tokio::spawn(async move {
                    if let Some(io) = io.await {
                        let (input, output) = spdy::over_io(io);
                        port_forward::serve_spdy(Connection::serve(input, output), target).await;
                    }
                });
                response
            }
        };
    }
    text(400, "Upgrade request required")
}
