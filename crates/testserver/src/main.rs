//! `skiff-testserver`: what the end-to-end tests run in their containers, packaged by the
//! tests as an OCI image. Plain std and one thread per connection, so that it is small and
//! starts at once.
//!
//! It listens on `$PORT` (8080) and answers:
//! - `GET /` and anything unknown: the request echoed back (method, path, headers, body);
//! - `GET /healthz`: 200 `ok`, or 500 once `POST /fail-health` has been called;
//! - `GET /readyz`: 503 until `$READY_AFTER` seconds have passed since start, then 200;
//! - `GET /hostname`: the container's host name; `GET /env/NAME`: that variable;
//! - `POST /alloc?mb=N`: takes N MiB more and touches every page (the memory hog);
//! - `POST /exit?code=N`: exits with that code.
//!
//! With `$GRPC_PORT` set, it also serves the gRPC health service there (`grpc_health.rs`).
//!
//! On SIGTERM it prints `SIGTERM received`, waits `$TERM_DELAY` seconds (0) still serving,
//! then exits 0, so tests can see a graceful stop within the grace period.

mod grpc_health;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

fn env_secs(name: &str) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub(crate) struct State {
    started: Instant,
    ready_after: Duration,
    pub(crate) healthy: AtomicBool,
    /// What /alloc took, kept for as long as the server runs.
    hog: Mutex<Vec<Vec<u8>>>,
}

fn main() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t) };
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).unwrap_or_else(|e| {
        eprintln!("skiff-testserver: cannot listen on port {port}: {e}");
        std::process::exit(1);
    });
    let state = Arc::new(State {
        started: Instant::now(),
        ready_after: Duration::from_secs(env_secs("READY_AFTER")),
        healthy: AtomicBool::new(true),
        hog: Mutex::new(Vec::new()),
    });
    println!("listening on {port}");
    if let Some(grpc_port) = std::env::var("GRPC_PORT").ok().and_then(|p| p.parse().ok()) {
        let state = state.clone();
        std::thread::spawn(move || grpc_health::serve(grpc_port, state));
    }
    std::thread::spawn(|| {
        while !TERMINATED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("SIGTERM received");
        std::thread::sleep(Duration::from_secs(env_secs("TERM_DELAY")));
        println!("exiting");
        std::process::exit(0);
    });
    for conn in listener.incoming().flatten() {
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = serve(conn, &state);
        });
    }
}

fn serve(conn: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("/").to_string());
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.push(format!("{}: {}", name, value.trim()));
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |key: &str| {
        query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')).and_then(|v| v.parse::<i64>().ok())
    };
    let (status, text) = match (method.as_str(), path) {
        ("GET", "/healthz") if state.healthy.load(Ordering::SeqCst) => (200, "ok\n".to_string()),
        ("GET", "/healthz") => (500, "unhealthy\n".to_string()),
        ("POST", "/fail-health") => {
            state.healthy.store(false, Ordering::SeqCst);
            (200, "health now fails\n".to_string())
        }
        ("GET", "/readyz") if state.started.elapsed() >= state.ready_after => (200, "ready\n".to_string()),
        ("GET", "/readyz") => (503, "not ready yet\n".to_string()),
        ("GET", "/hostname") => (200, format!("{}\n", hostname())),
        ("GET", p) if p.starts_with("/env/") => match std::env::var(&p[5..]) {
            Ok(v) => (200, format!("{v}\n")),
            Err(_) => (404, "unset\n".to_string()),
        },
        ("POST", "/alloc") => {
            let mb = param("mb").unwrap_or(1).max(0) as usize;
            let mut block = vec![0u8; mb << 20];
            // Touch every page, so the memory is really taken.
            for page in block.chunks_mut(4096) {
                page[0] = 1;
            }
            let mut hog = state.hog.lock().unwrap();
            hog.push(block);
            (200, format!("holding {} MiB\n", hog.iter().map(Vec::len).sum::<usize>() >> 20))
        }
        ("POST", "/exit") => {
            let code = param("code").unwrap_or(0) as i32;
            println!("exiting with {code} as asked");
            std::process::exit(code);
        }
        _ => (200, format!("{method} {target}\n{}\n\n{}", headers.join("\n"), String::from_utf8_lossy(&body))),
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        if status < 300 { "OK" } else { "Error" },
        text.len()
    )?;
    conn.flush()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}
