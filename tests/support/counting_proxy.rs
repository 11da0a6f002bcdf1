//! A loopback TCP proxy in front of a broker that counts the HTTP requests passing through it by
//! method and path: how the benchmarks see what a night asks the broker, without the broker (or
//! the client) knowing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Requests seen, by `METHOD /path`.
pub type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct CountingProxy {
    pub addr: SocketAddr,
    pub counts: Counts,
}

impl CountingProxy {
    /// A proxy to `upstream` on an ephemeral loopback port.
    pub async fn start(upstream: SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts: Counts = Arc::default();
        let seen = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 << 10];
                        let mut pending = Vec::new();
                        loop {
                            let n = match from_client.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            pending.extend_from_slice(&buf[..n]);
                            count_requests(&mut pending, &seen);
                            if to_server.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        CountingProxy { addr, counts }
    }

    /// The counts so far, and how many requests in all.
    pub fn snapshot(&self) -> (BTreeMap<String, u64>, u64) {
        let counts = self.counts.lock().unwrap().clone();
        let total = counts.values().sum();
        (counts, total)
    }
}

/// Counts every complete request line (`POST /v1/token/validate HTTP/1.1`) in `pending`, keeping
/// only what may be the start of the next one. Bodies are JSON, which holds no such line.
fn count_requests(pending: &mut Vec<u8>, seen: &Counts) {
    const MARK: &[u8] = b" HTTP/1.1\r\n";
    let mut consumed = 0;
    while let Some(at) = pending[consumed..]
        .windows(MARK.len())
        .position(|w| w == MARK)
    {
        let end = consumed + at;
        let line_start = pending[..end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
            .max(consumed);
        let text = String::from_utf8_lossy(&pending[line_start..end]);
        // A body without a newline runs into the next request line: start at its method.
        let method = ["GET /", "POST /", "PUT /", "PATCH /", "DELETE /"]
            .iter()
            .filter_map(|m| text.rfind(m))
            .max()
            .unwrap_or(0);
        let line = text[method..]
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        *seen.lock().unwrap().entry(line).or_default() += 1;
        consumed = end + MARK.len();
    }
    let keep = pending.len().saturating_sub(MARK.len() + 256).max(consumed);
    pending.drain(..keep);
}
