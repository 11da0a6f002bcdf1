//! The S3-compatible server the tests use: `cargo xtask test` starts moto on loopback, creates
//! one bucket and puts its endpoint in the `AWS_*` variables; each test keeps to a prefix of its
//! own.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};

use sluice_storage::Location;

const DUMMY_AUTHORIZATION: &str = "Authorization: AWS4-HMAC-SHA256 \
    Credential=sluice-test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with `cargo xtask test`, which starts an \
             S3-compatible server (moto) on loopback and sets SLUICE_TEST_S3_BUCKET and the \
             AWS_* variables"
        )
    })
}

/// A fresh `s3://<test bucket>/<name>-<pid>-<n>` nobody else writes to.
pub fn prefix(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "s3://{}/{name}-{}-{}",
        var("SLUICE_TEST_S3_BUCKET"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// [`prefix`] as a [`Location`].
pub fn location(name: &str) -> Location {
    Location::parse(&prefix(name), std::path::Path::new("")).unwrap()
}

/// The object at `location`'s bytes, or `None`.
pub fn get(location: &Location) -> Option<Vec<u8>> {
    location.get().unwrap()
}

/// Deletes the object at `url` (`s3://bucket/key`) behind Sluice's back, as anyone holding the
/// bucket's keys could. moto checks that a request is signed, not the signature, so plain HTTP
/// with a dummy `Authorization` header is enough.
pub fn delete(url: &str) {
    let path = url.strip_prefix("s3://").expect("an s3:// URL");
    let endpoint = var("AWS_ENDPOINT");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "DELETE /{path} HTTP/1.0\r\nHost: {host}\r\n{DUMMY_AUTHORIZATION}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 204") || response.starts_with("HTTP/1.1 204"),
        "deleting {url}: {response}"
    );
}
