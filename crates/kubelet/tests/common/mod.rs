//! What the kubelet API tests share: a test cluster CA, a client certificate it signed (as
//! the API server holds), a TLS client that takes the kubelet's self-signed certificate as
//! the API server does, and a kubelet API serving a fake pod.

#![allow(dead_code)]

use bytes::Bytes;
use kubelet::server::{LogSource, Outcome, PodError, Pods, Runner, Session, Target, serve};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use runtime::cri_log::{Stream, Writer};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_rustls::TlsConnector;

pub struct Ca {
    pub pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

pub fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "test-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.clone().self_signed(&key).unwrap().pem();
    Ca { pem, issuer: Issuer::new(params, key) }
}

/// The API server's kubelet client certificate, as the server makes it.
pub fn client_cert(issuer: &Issuer<'static, KeyPair>) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    user_cert(issuer, "kube-apiserver-kubelet-client", "system:masters")
}

/// A client certificate for `user` in `group`.
pub fn user_cert(
    issuer: &Issuer<'static, KeyPair>,
    user: &str,
    group: &str,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, user);
    params.distinguished_name.push(DnType::OrganizationName, group);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
}

/// The kubelet's certificate is self-signed: the client takes it as the API server does.
#[derive(Debug)]
pub struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

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

/// A TLS connection to the kubelet API at `addr`, presenting `client` if given.
pub async fn connect(
    addr: SocketAddr,
    client: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Box<dyn std::error::Error + Send + Sync>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let mut config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert.clone()], key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    Ok(TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("node-1")?, tcp).await?)
}

/// One pod, `default/web`, with one container `app` whose log is `log`. Its fake commands
/// stand for what a container would run: `echo WORDS`, `cat` (stdin to stdout), `fail`
/// (a word on stderr, exit code 3) and `size` (the first terminal size, as `WxH`).
pub struct FakePods {
    log: PathBuf,
    exited: Arc<AtomicBool>,
}

fn check(namespace: &str, pod: &str, container: &str) -> Result<(), PodError> {
    if (namespace, pod) != ("default", "web") {
        return Err(PodError::pod_not_found(pod));
    }
    if container != "app" {
        return Err(PodError::container_not_found(container, pod));
    }
    Ok(())
}

async fn fake_command(command: Vec<String>, mut session: Session) -> Outcome {
    let say = |to: &Option<tokio::sync::mpsc::Sender<Bytes>>, text: String| {
        let to = to.clone();
        async move {
            if let Some(to) = to {
                let _ = to.send(Bytes::from(text)).await;
            }
        }
    };
    match command.first().map(String::as_str) {
        Some("echo") => say(&session.stdout, format!("{}\n", command[1..].join(" "))).await,
        Some("cat") => {
            let mut stdin = session.stdin.take().expect("cat reads stdin");
            while let Some(data) = stdin.recv().await {
                say(&session.stdout, String::from_utf8_lossy(&data).into_owned()).await;
            }
        }
        Some("fail") => {
            say(&session.stderr, "oops\n".into()).await;
            return Outcome::Exited { code: 3, command };
        }
        Some("size") => {
            let size = session.resize.recv().await.expect("a terminal size");
            say(&session.stdout, format!("{}x{}", size.width, size.height)).await;
        }
        _ => return Outcome::Failed(format!("unknown command {command:?}")),
    }
    Outcome::Success
}

impl Pods for FakePods {
    fn log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Result<LogSource, PodError> {
        check(namespace, pod, container)?;
        if previous {
            return Err(PodError::no_previous(container, pod));
        }
        let exited = self.exited.clone();
        Ok(LogSource { path: self.log.clone(), exited: Arc::new(move || exited.load(Ordering::SeqCst)) })
    }

    fn exec(&self, namespace: &str, pod: &str, container: &str, command: Vec<String>) -> Result<Runner, PodError> {
        check(namespace, pod, container)?;
        Ok(Box::new(move |session| Box::pin(fake_command(command, session))))
    }

    fn attach(&self, namespace: &str, pod: &str, container: &str) -> Result<Runner, PodError> {
        check(namespace, pod, container)?;
        Ok(Box::new(move |session| Box::pin(fake_command(vec!["cat".into()], session))))
    }

    fn port_forward(&self, namespace: &str, pod: &str) -> Result<Target, PodError> {
        check(namespace, pod, "app")?;
        // The host's loopback, where the tests listen.
        Ok(Target { name: pod.to_string(), uid: "uid-1".into(), netns: None })
    }

    fn all(&self) -> Vec<serde_json::Value> {
        vec![serde_json::json!({"metadata": {"namespace": "default", "name": "web"}})]
    }
}

pub struct Fixture {
    pub addr: SocketAddr,
    /// The cluster CA the server trusts.
    pub ca: Ca,
    pub client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    pub writer: Writer,
    pub exited: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

pub async fn start() -> Fixture {
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
    Fixture { addr, client: Some(client_cert(&ca.issuer)), ca, writer, exited, _dir: dir }
}
