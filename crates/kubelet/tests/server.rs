//! The kubelet API's logs over real TLS, for a fake set of pods whose log is a real CRI log
//! file.

mod common;

use bytes::Bytes;
use common::{Fixture, ca, client_cert, start, user_cert};
use http_body_util::{BodyExt, Empty};
use runtime::cri_log::Stream;
use std::sync::atomic::Ordering;
use std::time::Duration;

type Response = http::Response<hyper::body::Incoming>;

async fn get(f: &Fixture, path: &str) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let tls = common::connect(f.addr, f.client.as_ref()).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path).header("host", "node-1").body(Empty::<Bytes>::new())?;
    Ok(sender.send_request(req).await?)
}

async fn body(resp: Response) -> String {
    String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn serves_a_containers_log() {
    let f = start().await;
    let resp = get(&f, "/containerLogs/default/web/app").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await, "hello\nworld\n");
    let resp = get(&f, "/containerLogs/default/web/app?tailLines=1&timestamps=true").await.unwrap();
    let text = body(resp).await;
    assert!(text.ends_with("Z world\n") && text.len() == "2024-01-01T00:00:00.000000000Z world\n".len(), "{text:?}");
}

#[tokio::test]
async fn follow_streams_until_the_container_exits() {
    let mut f = start().await;
    let resp = get(&f, "/containerLogs/default/web/app?follow=true").await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut seen = String::new();
    let mut next = async |seen: &mut String| {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame()).await.expect("a frame in time");
        match frame {
            Some(frame) => {
                seen.push_str(std::str::from_utf8(frame.unwrap().data_ref().unwrap()).unwrap());
                true
            }
            None => false,
        }
    };
    while seen != "hello\nworld\n" {
        assert!(next(&mut seen).await, "the body ended early: {seen:?}");
    }
    f.writer.write(Stream::Stdout, b"more\n").unwrap();
    while seen != "hello\nworld\nmore\n" {
        assert!(next(&mut seen).await, "the body ended early: {seen:?}");
    }
    f.writer.write(Stream::Stdout, b"last words").unwrap();
    f.writer.finish().unwrap();
    f.exited.store(true, Ordering::SeqCst);
    while next(&mut seen).await {}
    assert_eq!(seen, "hello\nworld\nmore\nlast words\n");
}

#[tokio::test]
async fn errors_carry_the_kubelets_status_and_words() {
    let f = start().await;
    let resp = get(&f, "/containerLogs/default/nope/app").await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(body(resp).await, "pod \"nope\" does not exist");
    let resp = get(&f, "/containerLogs/default/web/app?previous=true").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(body(resp).await, "previous terminated container \"app\" in pod \"web\" not found");
    let resp = get(&f, "/containerLogs/default/web/app?tailLines=-1").await.unwrap();
    assert_eq!(resp.status(), 422);
    let resp = get(&f, "/containerLogs/default/web/app?limitBytes=many").await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = get(&f, "/no/such/path").await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn clients_without_a_certificate_are_refused() {
    let mut f = start().await;
    // Signed by another CA: refused as well.
    let other = ca();
    let stranger = client_cert(&other.issuer);
    f.client = Some(stranger);
    assert!(get(&f, "/containerLogs/default/web/app").await.is_err());
    f.client = None;
    assert!(get(&f, "/containerLogs/default/web/app").await.is_err());
}

#[tokio::test]
async fn only_users_the_api_lets_use_nodes_proxy_are_served() {
    let mut f = start().await;
    // A node's certificate, signed by the cluster CA all the same.
    f.client = Some(user_cert(&f.ca.issuer, "system:node:node-2", "system:nodes"));
    for path in ["/containerLogs/default/web/app", "/pods"] {
        let resp = get(&f, path).await.unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(
            body(resp).await,
            "Forbidden (user=system:node:node-2, verb=get, resource=nodes, subresource=proxy)"
        );
    }
    f.client = Some(user_cert(&f.ca.issuer, "admin", "system:masters"));
    assert_eq!(get(&f, "/containerLogs/default/web/app").await.unwrap().status(), 200);
}
