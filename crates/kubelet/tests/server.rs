//! The kubelet API over real TLS: a test cluster CA, a client certificate it signed (as the
//! API server holds), and a fake set of pods whose log is a real CRI log file.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use kubelet::server::{LogError, LogSource, Pods, serve};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use runtime::cri_log::{Stream, Writer};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_rustls::TlsConnector;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "test-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.clone().self_signed(&key).unwrap().pem();
    Ca { pem, issuer: Issuer::new(params, key) }
}

fn client_cert(issuer: &Issuer<'static, KeyPair>) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver-kubelet-client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
}

/// The kubelet's certificate is self-signed: the client takes it as the API server does.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One pod, `default/web`, with one container `app` whose log is `log`.
struct FakePods {
    log: PathBuf,
    exited: Arc<AtomicBool>,
}

impl Pods for FakePods {
    fn log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Result<LogSource, LogError> {
        if (namespace, pod) != ("default", "web") {
            return Err(LogError::pod_not_found(pod));
        }
        if container != "app" {
            return Err(LogError::container_not_found(container, pod));
        }
        if previous {
            return Err(LogError::no_previous(container, pod));
        }
        let exited = self.exited.clone();
        Ok(LogSource { path: self.log.clone(), exited: Arc::new(move || exited.load(Ordering::SeqCst)) })
    }
}

struct Fixture {
    addr: SocketAddr,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    writer: Writer,
    exited: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/app/0.log");
    let mut writer = Writer::create(&log, 10 << 20, 5).unwrap();
    writer.write(Stream::Stdout, b"hello\n").unwrap();
    writer.write(Stream::Stderr, b"world\n").unwrap();
    let ca = ca();
    let exited = Arc::new(AtomicBool::new(false));
    let pods = Arc::new(FakePods { log, exited: exited.clone() });
    let listen = "127.0.0.1:0".parse().unwrap();
    let (addr, _task) = serve(listen, "node-1", &["127.0.0.1".parse().unwrap()], &ca.pem, pods).await.unwrap();
    Fixture { addr, client: Some(client_cert(&ca.issuer)), writer, exited, _dir: dir }
}

type Response = http::Response<hyper::body::Incoming>;

async fn get(f: &Fixture, path: &str) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let config = match &f.client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert.clone()], key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(f.addr).await?;
    let tls = TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("node-1")?, tcp).await?;
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
    let resp = get(&f, "/exec/default/web/app").await.unwrap();
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
