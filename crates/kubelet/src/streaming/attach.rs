//! `kubectl attach` (and `kubectl run -it`): the session joins a running container's own
//! streams through its shim's attach socket (`runtime::attach`).

use super::session::{Outcome, Session};
use bytes::Bytes;
use runtime::attach::Frame;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Relays between the session and the container until the container ends.
pub async fn run(run_dir: &Path, mut session: Session) -> Outcome {
    let stream = match runtime::attach::connect(run_dir).await {
        Ok(stream) => stream,
        Err(e) => return Outcome::Failed(format!("unable to attach to the container: {e}")),
    };
    let (mut from_shim, mut to_shim) = stream.into_split();
    let mut typed = session.stdin.take();
    let input = tokio::spawn(async move {
        if typed.is_some() && to_shim.write_all(&Frame::Stdin(Vec::new()).encode()).await.is_err() {
            return;
        }
        loop {
            let frame = tokio::select! {
                data = async { typed.as_mut()?.recv().await }, if typed.is_some() => match data {
                    Some(data) => Frame::Stdin(data.to_vec()),
                    None => {
                        typed = None;
                        Frame::StdinClose
                    }
                },
                size = session.resize.recv() => match size {
                    Some(size) => Frame::Resize { width: size.width, height: size.height },
                    None => return,
                },
            };
            if to_shim.write_all(&frame.encode()).await.is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    // The shim lets its attachers go when the container's output closes.
    'read: while let Ok(n) = from_shim.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Ok(Some(frame)) = Frame::decode(&mut buf) {
            let (to, data) = match frame {
                Frame::Stdout(data) => (&session.stdout, data),
                Frame::Stderr(data) => (&session.stderr, data),
                _ => continue,
            };
            if let Some(to) = to
                && to.send(Bytes::from(data)).await.is_err()
            {
                break 'read;
            }
        }
    }
    input.abort();
    Outcome::Success
}
