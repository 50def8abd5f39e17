//! One exec or attach session, between the protocol the client speaks (`channels.rs` for
//! WebSocket, `remote_command.rs` for SPDY) and what runs it (`exec.rs`, `attach.rs`): the
//! streams the client asked for, and how the session ended.

use bytes::Bytes;
use tokio::sync::mpsc;

/// A terminal size, in columns and rows, as the client sends it (`{"Width":80,"Height":24}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The streams of a session. A closed `stdin` is end of file; dropping `stdout` and `stderr`
/// tells the protocol side that no more output comes.
pub struct Session {
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    pub stdout: Option<mpsc::Sender<Bytes>>,
    pub stderr: Option<mpsc::Sender<Bytes>>,
    pub resize: mpsc::Receiver<TerminalSize>,
    pub tty: bool,
}

/// How a session ended, which the client reads on its error stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command ran and exited with a code other than 0.
    Exited {
        code: i32,
        command: Vec<String>,
    },
    /// The session could not run, in words for the user.
    Failed(String),
}

impl Outcome {
    /// The metav1.Status the v4 and later protocols write on the error stream, as the kubelet
    /// words it: kubectl exits with a NonZeroExitCode's ExitCode cause.
    pub fn status(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Outcome::Success => json!({"metadata": {}, "status": "Success"}),
            Outcome::Exited { code, command } => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!(
                    "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                    command.join(" ")
                ),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            }),
            Outcome::Failed(message) => json!({
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "InternalError",
                "code": 500,
            }),
        }
    }

    /// The plain text earlier protocols write on the error stream: nothing for success.
    pub fn text(&self) -> String {
        match self {
            Outcome::Success => String::new(),
            Outcome::Exited { code, command } => format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            Outcome::Failed(message) => message.clone(),
        }
    }
}

/// The sending halves the protocol side keeps, and the session it hands to the runner.
pub struct Ends {
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub stdout: Option<mpsc::Receiver<Bytes>>,
    pub stderr: Option<mpsc::Receiver<Bytes>>,
    pub resize: mpsc::Sender<TerminalSize>,
}

/// Makes a session with the streams asked for. A stderr is never given with a TTY: the
/// terminal carries everything on stdout.
pub fn open(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> (Ends, Session) {
    fn pair(wanted: bool) -> (Option<mpsc::Sender<Bytes>>, Option<mpsc::Receiver<Bytes>>) {
        if !wanted {
            return (None, None);
        }
        let (tx, rx) = mpsc::channel(16);
        (Some(tx), Some(rx))
    }
    let (stdin_tx, stdin_rx) = pair(stdin);
    let (stdout_tx, stdout_rx) = pair(stdout);
    let (stderr_tx, stderr_rx) = pair(stderr && !tty);
    let (resize_tx, resize_rx) = mpsc::channel(4);
    (
        Ends { stdin: stdin_tx, stdout: stdout_rx, stderr: stderr_rx, resize: resize_tx },
        Session { stdin: stdin_rx, stdout: stdout_tx, stderr: stderr_tx, resize: resize_rx, tty },
    )
}
