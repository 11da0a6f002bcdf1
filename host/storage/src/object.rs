//! S3-compatible object storage through the `object_store` crate, configured the way every S3
//! tool is: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (or a web identity / container role),
//! `AWS_REGION` or `AWS_DEFAULT_REGION`, and for a server other than AWS, `AWS_ENDPOINT_URL` or
//! `AWS_ENDPOINT` (plus `AWS_ALLOW_HTTP=true` for plain HTTP).
//!
//! Requests run on a small runtime of their own, so blocking callers (the audit writer's thread,
//! the CLI, a blocking task of the night) can wait for them from anywhere, inside an async
//! runtime or not.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::TryStreamExt as _;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutMode, PutPayload, RetryConfig};

/// An object, or a folder of them, in one bucket.
#[derive(Clone)]
pub struct ObjectLocation {
    bucket: Arc<str>,
    key: Key,
    store: Arc<dyn ObjectStore>,
}

impl PartialEq for ObjectLocation {
    fn eq(&self, other: &Self) -> bool {
        self.bucket == other.bucket && self.key == other.key
    }
}

impl Eq for ObjectLocation {}

impl ObjectLocation {
    /// `s3://bucket/prefix`; the client is built from the environment (see the module
    /// documentation), and conditional writes (`If-None-Match`) are used where Sluice must not
    /// replace an object, as AWS S3, MinIO, R2 and moto support.
    pub fn parse(url: &str) -> anyhow::Result<ObjectLocation> {
        let rest = url
            .strip_prefix("s3://")
            .with_context(|| format!("'{url}' is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(
            (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
            "'{url}': '{bucket}' is not an S3 bucket name (3-63 lowercase letters, digits, '-' or '.')"
        );
        let key = Key::parse(prefix.trim_matches('/'))
            .with_context(|| format!("'{url}': the part after the bucket is not an object key"))?;
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            // A blip is retried; a wrong endpoint or a dead server fails in seconds, not the
            // three minutes of object_store's default, so a night and `sluice status` say so.
            .with_retry(RetryConfig {
                max_retries: 6,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            })
            .build()
            .with_context(|| format!("connecting to {url} (check the AWS_* environment)"))?;
        Ok(ObjectLocation {
            bucket: bucket.into(),
            key,
            store: Arc::new(store),
        })
    }

    /// `name` below this key; a `/` in it separates parts, as in a path.
    pub fn child(&self, name: &str) -> ObjectLocation {
        let key = name
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.key.clone(), |key, part| key.child(part));
        ObjectLocation {
            key,
            ..self.clone()
        }
    }

    pub fn parent(&self) -> Option<ObjectLocation> {
        let mut parts: Vec<_> = self.key.parts().collect();
        parts.pop()?;
        Some(ObjectLocation {
            key: Key::from_iter(parts),
            ..self.clone()
        })
    }

    /// The last part of the key: the object's name in its folder.
    pub fn name(&self) -> &str {
        self.key.filename().unwrap_or("")
    }

    /// Replaces the object with `bytes` in one PUT.
    pub fn put(&self, bytes: Vec<u8>) -> anyhow::Result<()> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        wait(async move { store.put(&key, PutPayload::from(bytes)).await })?
            .map_err(|e| failed("writing", self, e))?;
        Ok(())
    }

    /// Writes the object only if it does not exist yet; `false` if it did (nothing written).
    pub fn create(&self, bytes: Vec<u8>) -> anyhow::Result<bool> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        let put = wait(async move {
            store
                .put_opts(&key, PutPayload::from(bytes), PutMode::Create.into())
                .await
        })?;
        match put {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(failed("creating", self, e)),
        }
    }

    /// The object's bytes; `None` if there is no such object.
    pub fn get(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        let got = wait(async move {
            match store.get(&key).await {
                Ok(found) => found.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(got
            .map_err(|e| failed("reading", self, e))?
            .map(|b| b.to_vec()))
    }

    /// The first key part below this folder of every object in it (its files and folders).
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let depth = self.key.parts().count();
        Ok(self
            .list()?
            .iter()
            .filter_map(|o| o.key.parts().nth(depth).map(|p| p.as_ref().to_string()))
            .collect())
    }

    /// That the bucket exists and these credentials may list this folder: one request, whatever
    /// the folder holds (the first page of a listing).
    pub fn check(&self) -> anyhow::Result<()> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        match wait(async move { store.list(Some(&key)).try_next().await })? {
            Ok(_) => Ok(()),
            Err(e) => Err(failed("listing", self, e)),
        }
    }

    /// The objects in this folder (and below), in key order.
    pub fn list(&self) -> anyhow::Result<Vec<ObjectLocation>> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        let mut keys = wait(async move {
            store
                .list(Some(&key))
                .map_ok(|meta| meta.location)
                .try_collect::<Vec<_>>()
                .await
        })?
        .map_err(|e| failed("listing", self, e))?;
        keys.sort();
        Ok(keys
            .into_iter()
            .map(|key| ObjectLocation {
                key,
                ..self.clone()
            })
            .collect())
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.as_ref().is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.key)
        }
    }
}

impl fmt::Debug for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL only: the client holds credentials.
        fmt::Display::fmt(self, f)
    }
}

/// `what` failed at `at`, in one line: object_store's message already holds its sources' text,
/// except the root cause (refused, unknown host, ...), which is added when it is missing.
fn failed(what: &str, at: &ObjectLocation, e: object_store::Error) -> anyhow::Error {
    let mut message = e.to_string();
    let mut root = None;
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        root = Some(cause.to_string());
        source = cause.source();
    }
    if let Some(root) = root.filter(|r| !message.contains(r.as_str())) {
        message = format!("{message}: {root}");
    }
    // One line, whatever the server's error document looked like.
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    anyhow::anyhow!("{what} {at}: {message} (check AWS_ENDPOINT and the AWS_* credentials)")
}

/// Runs `request` on the object-storage runtime and waits for it from this thread.
fn wait<T: Send + 'static>(request: impl Future<Output = T> + Send + 'static) -> anyhow::Result<T> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sluice-object-store")
                .enable_all()
                .build()
                .map_err(|e| format!("starting the object-storage runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = reply.send(request.await);
    });
    answer
        .recv()
        .map_err(|_| anyhow::anyhow!("an object-storage request was dropped before it finished"))
}
