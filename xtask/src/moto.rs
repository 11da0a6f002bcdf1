//! A throwaway S3-compatible server on loopback for the tests: `moto`'s server mode (PyPI
//! `moto[server]`, pinned in `tests/python/requirements.txt`, installed in the project's venv), on
//! a free port, with one bucket, stopped when the tests end. No Docker, no cloud account.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::interpreted;

/// The bucket the tests share; each test keeps to a prefix of its own.
pub const BUCKET: &str = "sluice-test";

pub struct TestS3 {
    server: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl TestS3 {
    pub fn start() -> Result<TestS3, String> {
        let bin = interpreted::venv()?.join("bin").join("moto_server");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let server = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut s3 = TestS3 {
            server,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // Creating the bucket is also the readiness check: moto takes a second or two to start.
        crate::wait_ready(
            &format!("moto on port {port}"),
            &mut s3.server,
            Duration::from_secs(60),
            || create_bucket(port),
        )?;
        Ok(s3)
    }

    /// The environment that points Sluice (and any S3 tool) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "sluice-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "sluice-test-secret".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("SLUICE_TEST_S3_BUCKET", BUCKET.into()),
        ]
    }
}

/// `PUT /<bucket>`. moto checks that a request is signed, not the signature, so plain HTTP with a
/// dummy `Authorization` header is enough.
fn create_bucket(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "PUT /{BUCKET} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=sluice-test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, \
         Signature=0\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(response.lines().next().unwrap_or("no answer").to_string())
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
