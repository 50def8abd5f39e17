//! The etcd backend against a real etcd (Debian's `etcd-server`), which each test starts on
//! loopback: the backend-agnostic suite, then what only etcd does (prefixes, watches that outlive
//! an etcd restart, compaction shared between servers, TLS, an unreachable etcd).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use store::{Error, EtcdOptions, EtcdStore, EventKind, RangeRequest, Store, WatchItem, WatchStream};
use tempfile::TempDir;

/// How long etcd may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a watch may take to deliver an item.
const WATCH_TIMEOUT: Duration = Duration::from_secs(20);

/// A single-member etcd on loopback, with its data in a temporary folder. Killed on drop.
struct Etcd {
    child: Child,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<Certs>,
    /// More command-line flags for etcd.
    flags: Vec<String>,
}

impl Etcd {
    async fn start() -> Etcd {
        Etcd::start_with(None, &[]).await
    }

    async fn start_with(tls: Option<Certs>, flags: &[&str]) -> Etcd {
        // Data on tmpfs where there is one: etcd syncs every write, and the tests write a lot.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
        let (client_port, peer_port) = (free_port(), free_port());
        let flags: Vec<String> = flags.iter().map(|&flag| flag.to_owned()).collect();
        let child = spawn(dir.path(), client_port, peer_port, tls.as_ref(), &flags);
        let mut etcd = Etcd { child, dir, client_port, peer_port, tls, flags };
        for _ in 0..3 {
            if etcd.wait_until_ready().await {
                return etcd;
            }
            // Another test may have taken a port between its probe and etcd's bind.
            (etcd.client_port, etcd.peer_port) = (free_port(), free_port());
            etcd.respawn();
        }
        panic!("etcd did not start; its log:\n{}", log_tail(etcd.dir.path()));
    }

    fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Options for a store on this etcd, without background compaction (tests compact by hand).
    fn options(&self) -> EtcdOptions {
        let files = |f: fn(&Certs) -> PathBuf| self.tls.as_ref().map(f);
        EtcdOptions {
            endpoints: vec![self.client_url()],
            ca_file: files(|c| c.ca.clone()),
            cert_file: files(|c| c.client_cert.clone()),
            key_file: files(|c| c.client_key.clone()),
            compaction_interval: Duration::ZERO,
            ..EtcdOptions::default()
        }
    }

    /// A plain etcd client, to see what the store wrote where.
    async fn client(&self) -> Client {
        let mut options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(2));
        if let Some(certs) = &self.tls {
            let identity = Identity::from_pem(read(&certs.client_cert), read(&certs.client_key));
            options = options
                .with_tls(TlsOptions::new().ca_certificate(Certificate::from_pem(read(&certs.ca))).identity(identity));
        }
        Client::connect([self.client_url()], Some(options)).await.unwrap()
    }

    /// Waits until etcd answers a read; false if it exited first.
    async fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            let mut client = self.client().await;
            let read = tokio::time::timeout(Duration::from_secs(1), client.get("/", None)).await;
            if matches!(read, Ok(Ok(_))) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("etcd did not answer within {START_TIMEOUT:?}; its log:\n{}", log_tail(self.dir.path()));
    }

    /// Kills etcd with SIGKILL and starts it again on the same data and ports.
    async fn restart(&mut self) {
        self.respawn();
        assert!(self.wait_until_ready().await, "etcd did not restart; its log:\n{}", log_tail(self.dir.path()));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn respawn(&mut self) {
        self.kill();
        self.child = spawn(self.dir.path(), self.client_port, self.peer_port, self.tls.as_ref(), &self.flags);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(dir: &Path, client_port: u16, peer_port: u16, tls: Option<&Certs>, flags: &[String]) -> Child {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let client_url = format!("{scheme}://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let log = File::options().create(true).append(true).open(dir.join("etcd.log")).unwrap();
    let mut command = Command::new("etcd");
    command
        .arg("--name=test")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=test={peer_url}"))
        .args(["--logger=zap", "--log-outputs=stderr"])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    if let Some(certs) = tls {
        command
            .arg(format!("--cert-file={}", certs.server_cert.display()))
            .arg(format!("--key-file={}", certs.server_key.display()))
            .arg(format!("--trusted-ca-file={}", certs.ca.display()))
            .arg("--client-cert-auth");
    }
    match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("etcd is not installed: these tests run a real etcd; install it with `apt-get install etcd-server`")
        }
        Err(e) => panic!("cannot start etcd: {e}"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("etcd.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A CA, a certificate for etcd signed by it, and one for its client, as PEM files.
struct Certs {
    _dir: TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Certs {
    fn generate() -> Certs {
        use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let issue = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).unwrap();
            let (cert_path, key_path) =
                (dir.path().join(format!("{name}.crt")), dir.path().join(format!("{name}.key")));
            std::fs::write(&cert_path, cert.pem()).unwrap();
            std::fs::write(&key_path, key.serialize_pem()).unwrap();
            (cert_path, key_path)
        };
        let (server_cert, server_key) = issue("server", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = issue("client", ExtendedKeyUsagePurpose::ClientAuth);
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        Certs { _dir: dir, ca, server_cert, server_key, client_cert, client_key }
    }
}

async fn fresh() -> (Arc<dyn Store>, Etcd) {
    let etcd = Etcd::start().await;
    let store = EtcdStore::connect(etcd.options()).await.unwrap();
    (store, etcd)
}

mod suite {
    store::store_suite!(super::fresh);
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

async fn next_item(stream: &mut WatchStream) -> WatchItem {
    match tokio::time::timeout(WATCH_TIMEOUT, stream.recv()).await {
        Ok(Some(Ok(item))) => item,
        Ok(Some(Err(e))) => panic!("the watch failed: {e}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("the watch delivered nothing within {WATCH_TIMEOUT:?}"),
    }
}

/// The key and revision of the next event.
async fn next_change(stream: &mut WatchStream) -> (EventKind, String, i64) {
    match next_item(stream).await {
        WatchItem::Event(event) => (event.kind, event.kv.key.clone(), event.revision()),
        WatchItem::Progress(revision) => panic!("expected an event, got progress at {revision}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_configured_prefix() {
    let etcd = Etcd::start().await;
    let mut raw = etcd.client().await;
    let key = "/registry/core/pods/default/web-0";

    let prefixed = EtcdStore::connect(EtcdOptions { prefix: "/skiff-a".to_owned(), ..etcd.options() }).await.unwrap();
    let mut watch = prefixed.watch("/registry/core/pods/", 0).await.unwrap();
    let revision = prefixed.create(key, bytes("pod")).await.unwrap();
    let stored = raw.get("/skiff-a/core/pods/default/web-0", None).await.unwrap();
    assert_eq!(stored.kvs().len(), 1, "the key is not under the prefix");
    assert_eq!((stored.kvs()[0].value(), stored.kvs()[0].mod_revision()), (&b"pod"[..], revision));
    assert!(raw.get(key, None).await.unwrap().kvs().is_empty(), "the key was stored unprefixed too");
    // Read, listed and watched under the store's key.
    assert_eq!(prefixed.get(key).await.unwrap().unwrap().key, key);
    let request = RangeRequest { prefix: "/registry/core/pods/".to_owned(), ..Default::default() };
    let listed: Vec<String> = prefixed.range(request).await.unwrap().kvs.into_iter().map(|kv| kv.key).collect();
    assert_eq!(listed, [key]);
    assert_eq!(next_change(&mut watch).await, (EventKind::Put, key.to_owned(), revision));

    // The default prefix, /registry, leaves the API server's keys as they are.
    let plain = EtcdStore::connect(etcd.options()).await.unwrap();
    plain.create(key, bytes("other")).await.unwrap();
    assert_eq!(raw.get(key, None).await.unwrap().kvs()[0].value(), b"other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_with_different_prefixes_do_not_see_each_other() {
    let etcd = Etcd::start().await;
    let connect = |prefix: &str| EtcdStore::connect(EtcdOptions { prefix: prefix.to_owned(), ..etcd.options() });
    // One prefix is the start of the other: that must not matter.
    let (a, b) = (connect("/skiff-a").await.unwrap(), connect("/skiff-ab").await.unwrap());
    let mut a_watch = a.watch("/registry/", 0).await.unwrap();
    let key = "/registry/core/configmaps/default/settings";
    let a_revision = a.create(key, bytes("a")).await.unwrap();
    b.create(key, bytes("b")).await.expect("a key of the other prefix got in the way");
    let b_only = "/registry/core/configmaps/default/b-only";
    b.create(b_only, bytes("b")).await.unwrap();

    assert_eq!(a.get(key).await.unwrap().unwrap().value, "a");
    assert_eq!(b.get(key).await.unwrap().unwrap().value, "b");
    assert_eq!(a.get(b_only).await.unwrap(), None);
    let everything = || RangeRequest { prefix: "/registry/".to_owned(), ..Default::default() };
    assert_eq!(a.range(everything()).await.unwrap().kvs.len(), 1);
    assert_eq!(b.range(everything()).await.unwrap().kvs.len(), 2);
    let (a_deleted, _) = a.delete(key, None).await.unwrap();
    assert_eq!(b.get(key).await.unwrap().unwrap().value, "b");
    // `a`'s watch saw its own two changes and nothing of `b`'s.
    assert_eq!(next_change(&mut a_watch).await, (EventKind::Put, key.to_owned(), a_revision));
    assert_eq!(next_change(&mut a_watch).await, (EventKind::Delete, key.to_owned(), a_deleted));
    a.request_progress().await.unwrap();
    assert_eq!(next_item(&mut a_watch).await, WatchItem::Progress(a_deleted));
}

/// Waits until the store answers again after etcd came back.
async fn wait_for(store: &dyn Store) {
    let deadline = Instant::now() + START_TIMEOUT;
    while let Err(e) = store.current_revision().await {
        assert!(Instant::now() < deadline, "the store did not reconnect to etcd: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_survives_an_etcd_restart() {
    let mut etcd = Etcd::start().await;
    let store = EtcdStore::connect(etcd.options()).await.unwrap();
    let mut stream = store.watch("/r/", 0).await.unwrap();
    let r1 = store.create("/r/a", bytes("1")).await.unwrap();
    assert_eq!(next_change(&mut stream).await, (EventKind::Put, "/r/a".to_owned(), r1));

    for round in 0..2 {
        etcd.restart().await;
        wait_for(&*store).await;
        // Written while the watch may still be resuming: it must replay exactly these.
        let key = format!("/r/{round}");
        let created = store.create(&key, bytes("1")).await.unwrap();
        let updated = store.update(&key, bytes("2"), created).await.unwrap();
        let (deleted, _) = store.delete(&key, Some(updated)).await.unwrap();
        assert_eq!(next_change(&mut stream).await, (EventKind::Put, key.clone(), created));
        assert_eq!(next_change(&mut stream).await, (EventKind::Put, key.clone(), updated));
        assert_eq!(next_change(&mut stream).await, (EventKind::Delete, key.clone(), deleted));
    }
    let last = store.current_revision().await.unwrap();
    store.request_progress().await.unwrap();
    assert_eq!(next_item(&mut stream).await, WatchItem::Progress(last), "the watch delivered something twice");
}

/// The revisions a watch must deliver, in order, and how many of them it has delivered.
struct Expected {
    revisions: Vec<i64>,
    delivered: usize,
}

impl Expected {
    /// Checks the watch's next item: the next event, or a progress notice that comes after every
    /// event it covers. Returns the notice's revision.
    fn check(&mut self, item: WatchItem) -> Option<i64> {
        let pending = self.revisions.get(self.delivered).copied();
        match item {
            WatchItem::Event(event) => {
                assert_eq!(Some(event.revision()), pending, "the events came out of order");
                self.delivered += 1;
                None
            }
            WatchItem::Progress(revision) => {
                if let Some(pending) = pending {
                    assert!(pending > revision, "progress at {revision} came before the event at {pending}");
                }
                Some(revision)
            }
        }
    }
}

/// etcd before 3.4.25 and 3.5.8 (Debian 12 has 3.4.23) answers a progress request at once with
/// its current revision, even for a watch that is still replaying history: such a notice must not
/// reach the consumer before the events it covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_never_overtakes_a_replay() {
    const EVENTS: usize = 300;
    let (store, _etcd) = fresh().await;
    let mut expected = Expected { revisions: Vec::with_capacity(EVENTS + 1), delivered: 0 };
    for i in 0..EVENTS {
        expected.revisions.push(store.create(&format!("/replay/{i}"), bytes("v")).await.unwrap());
    }
    let mut stream = store.watch("/replay/", expected.revisions[0]).await.unwrap();
    // etcd replays history to a new watch on its next sync, up to 100 ms later: these requests
    // reach it before. The pauses keep the store from merging them into one.
    for _ in 0..3 {
        store.request_progress().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while expected.delivered < EVENTS {
        let progress = expected.check(next_item(&mut stream).await);
        if progress.is_none() && expected.delivered.is_multiple_of(50) {
            store.request_progress().await.unwrap();
        }
    }

    // Once the watch has caught up, progress comes again. A notice may still be dropped (one
    // that overtakes the new event), so the requests go on until one arrives.
    let last = store.create("/replay/last", bytes("v")).await.unwrap();
    expected.revisions.push(last);
    let deadline = Instant::now() + WATCH_TIMEOUT;
    loop {
        store.request_progress().await.unwrap();
        match tokio::time::timeout(Duration::from_millis(100), stream.recv()).await {
            Ok(Some(Ok(item))) => {
                if expected.check(item).is_some_and(|revision| revision >= last) {
                    break;
                }
            }
            Ok(Some(Err(e))) => panic!("the watch failed: {e}"),
            Ok(None) => panic!("the watch ended"),
            Err(_) => assert!(Instant::now() < deadline, "no progress at or after {last} within {WATCH_TIMEOUT:?}"),
        }
    }
}

/// A watch from the past whose keys do not change gets no newer event to show that it caught up;
/// etcd's periodic progress notice, which it sends only to a watch that caught up, shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_watch_from_the_past_gets_progress() {
    let etcd = Etcd::start_with(None, &["--experimental-watch-progress-notify-interval=200ms"]).await;
    let store = EtcdStore::connect(etcd.options()).await.unwrap();
    let quiet = store.create("/quiet/a", bytes("v")).await.unwrap();
    let elsewhere = store.create("/elsewhere/a", bytes("v")).await.unwrap();
    let mut stream = store.watch("/quiet/", quiet).await.unwrap();
    store.request_progress().await.unwrap();
    assert_eq!(next_change(&mut stream).await, (EventKind::Put, "/quiet/a".to_owned(), quiet));
    assert_eq!(next_item(&mut stream).await, WatchItem::Progress(elsewhere));
    // Known caught up now, the watch passes on answers to progress requests again.
    let later = store.create("/elsewhere/b", bytes("v")).await.unwrap();
    store.request_progress().await.unwrap();
    assert_eq!(next_item(&mut stream).await, WatchItem::Progress(later));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_of_two_servers_compacts_each_round() {
    const INTERVAL: Duration = Duration::from_secs(1);
    const ROUNDS: u32 = 4;
    let etcd = Etcd::start().await;
    let mut raw = etcd.client().await;
    let mut rounds = raw.watch("compact_rev_key", None).await.unwrap();
    let options = EtcdOptions { compaction_interval: INTERVAL, ..etcd.options() };
    let (a, b) = tokio::join!(EtcdStore::connect(options.clone()), EtcdStore::connect(options));
    let (a, b) = (a.unwrap(), b.unwrap());
    let start = Instant::now();
    let writer = tokio::spawn({
        let a = Arc::clone(&a);
        async move {
            let mut revision = a.create("/k/x", bytes("0")).await.unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                revision = a.update("/k/x", bytes("v"), revision).await.unwrap();
            }
        }
    });

    // The winner of each round writes the revision it compacts at; the loser writes nothing.
    let mut wins: Vec<(Duration, i64)> = Vec::new();
    let window = INTERVAL * ROUNDS + INTERVAL / 2;
    let end = tokio::time::Instant::from_std(start + window);
    while let Ok(response) = tokio::time::timeout_at(end, rounds.message()).await {
        for event in response.unwrap().expect("etcd ended the watch").events() {
            let value = event.kv().unwrap().value_str().unwrap().parse().unwrap();
            wins.push((start.elapsed(), value));
        }
    }
    writer.abort();
    drop((a, b));
    assert_eq!(wins.len(), ROUNDS as usize, "{} rounds gave these wins: {wins:?}", ROUNDS);
    for pair in wins.windows(2) {
        assert!(pair[1].0 - pair[0].0 > INTERVAL / 2, "two servers won one round: {wins:?}");
    }
    // The first winner had no revision to compact at yet; every later one compacted.
    assert_eq!(wins[0].1, 0);
    let (_, last) = *wins.last().unwrap();
    assert!(last > wins[1].1 && wins[1].1 > 0, "{wins:?}");
    let checker = EtcdStore::connect(etcd.options()).await.unwrap();
    assert_eq!(checker.compacted_revision().await.unwrap(), last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let etcd = Etcd::start_with(Some(Certs::generate()), &[]).await;
    let store = EtcdStore::connect(etcd.options()).await.unwrap();
    let revision = store.create("/registry/core/namespaces/default", bytes("{}")).await.unwrap();
    assert_eq!(store.get("/registry/core/namespaces/default").await.unwrap().unwrap().mod_revision, revision);

    // etcd refuses a client without a certificate, and the error says where it was going.
    let anonymous = EtcdOptions { cert_file: None, key_file: None, ..etcd.options() };
    match EtcdStore::connect(anonymous).await {
        Err(Error::Backend(message)) => assert!(message.contains(&etcd.client_url()), "{message}"),
        Err(e) => panic!("connecting without a client certificate gave {e}"),
        Ok(_) => panic!("etcd took a client without a certificate"),
    }
}

#[tokio::test]
async fn an_unreachable_etcd_is_a_clear_error() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let options =
        EtcdOptions { endpoints: vec![endpoint.clone()], compaction_interval: Duration::ZERO, ..Default::default() };
    let started = Instant::now();
    match EtcdStore::connect(options).await {
        Err(Error::Backend(message)) => {
            assert!(message.contains("cannot reach etcd") && message.contains(&endpoint), "{message}")
        }
        Err(e) => panic!("connecting to nothing gave {e}"),
        Ok(_) => panic!("connected to an etcd that is not there"),
    }
    assert!(started.elapsed() < Duration::from_secs(15), "it took {:?} to give up", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_watches_move_past_an_unreachable_member() {
    let etcd = Etcd::start().await;
    let down = format!("http://127.0.0.1:{}", free_port());
    let options = EtcdOptions { endpoints: vec![down, etcd.client_url()], ..etcd.options() };
    let store = EtcdStore::connect(options).await.expect("a live member among the endpoints is enough");
    let mut watch = store.watch("/registry/things/", 0).await.unwrap();
    let created = store.create("/registry/things/a", bytes("1")).await.unwrap();
    let updated = store.update("/registry/things/a", bytes("2"), created).await.unwrap();
    assert_eq!(store.get("/registry/things/a").await.unwrap().unwrap().value, bytes("2"));
    let listed = store.range(RangeRequest { prefix: "/registry/things/".to_owned(), ..Default::default() }).await;
    assert_eq!(listed.unwrap().kvs.len(), 1);
    assert_eq!(next_change(&mut watch).await, (EventKind::Put, "/registry/things/a".to_owned(), created));
    assert_eq!(next_change(&mut watch).await, (EventKind::Put, "/registry/things/a".to_owned(), updated));
}
