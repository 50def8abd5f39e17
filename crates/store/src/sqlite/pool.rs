//! Read connections, lent to blocking tasks. In WAL mode each read sees the last commit as of
//! its start and never waits for the writer, so reads and the writer's group commits overlap.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use crate::{Error, Result};

use super::schema;

/// How many idle connections to keep; more are opened on demand and closed after use.
const MAX_IDLE: usize = 4;

pub(super) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    /// Opens no connection yet, so that opening the store stays fast.
    pub fn new(path: &Path) -> Arc<Self> {
        Arc::new(ReadPool { path: path.to_owned(), idle: Mutex::new(Vec::new()) })
    }

    /// Runs `read` on a read connection in tokio's blocking pool.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.checkout()?;
            let result = read(&mut conn);
            pool.checkin(conn);
            result
        })
        .await
        .map_err(|e| Error::Backend(format!("a store read failed: {e}")))?
    }

    /// Runs a point read (one key, through the index: microseconds) on the calling thread.
    /// Handing it to the blocking pool would cost two thread switches, more than the read.
    pub fn run_here<T>(&self, read: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.checkout()?;
        let result = read(&mut conn);
        self.checkin(conn);
        result
    }

    fn checkout(&self) -> Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path),
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}
