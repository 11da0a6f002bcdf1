//! Components importing what Sluice never provides: the host refuses to load them at all.

use sluice_guest::{RunError, Summary};

/// Reads `/etc/passwd` (imports `wasi:filesystem`).
#[cfg(feature = "filesystem")]
pub fn attack() -> Result<Summary, RunError> {
    let secrets =
        std::fs::read_to_string("/etc/passwd").map_err(|e| RunError::Failed(e.to_string()))?;
    Err(RunError::Failed(format!(
        "read {} bytes of /etc/passwd",
        secrets.len()
    )))
}

/// Connects to the broker's port (imports `wasi:sockets`).
#[cfg(all(feature = "sockets", not(feature = "filesystem")))]
pub fn attack() -> Result<Summary, RunError> {
    let stream = std::net::TcpStream::connect("127.0.0.1:8080")
        .map_err(|e| RunError::Failed(e.to_string()))?;
    Err(RunError::Failed(format!("connected: {stream:?}")))
}
