//! OCI registries and publishers for the plugin tests: the registry `cargo xtask test` starts
//! (`SLUICE_TEST_REGISTRY`), or a private one a test may stop; plugins pushed with PyPI's
//! `oras` and signed with `openssl` by `tests/python/oci_publish.py`, not by Sluice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::root;

/// The project venv's Python, where `oras` is installed.
fn python() -> String {
    std::env::var("SLUICE_TEST_PYTHON").expect(
        "SLUICE_TEST_PYTHON is not set: run the tests with `cargo xtask test`, which makes the \
         venv with PyPI's oras",
    )
}

fn publish(args: &[&str]) -> String {
    publish_as(args, None)
}

fn publish_as(args: &[&str], login: Option<(&str, &str)>) -> String {
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/python/oci_publish.py"))
        .args(args);
    if let Some((user, password)) = login {
        command
            .env("OCI_PUBLISH_USER", user)
            .env("OCI_PUBLISH_PASSWORD", password);
    }
    let out = command.output().expect("running oci_publish.py");
    assert!(
        out.status.success(),
        "oci_publish.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Pushes `plugin` to `target` (`HOST/REPO:TAG`) with oras; returns the manifest digest.
pub fn push(target: &str, plugin: &Path) -> String {
    publish(&["push", target, plugin.to_str().unwrap()])
}

/// [`push`] to a registry that needs `user` and `password`.
pub fn push_with_login(target: &str, plugin: &Path, user: &str, password: &str) -> String {
    publish_as(
        &["push", target, plugin.to_str().unwrap()],
        Some((user, password)),
    )
}

/// Signs `HOST/REPO@DIGEST` with the P-256 key `key` (PEM) as cosign lays it out; `extra` is
/// `--payload-digest D` (sign another digest) or `--tamper` (change the payload after signing).
pub fn sign(target: &str, key: &Path, extra: &[&str]) {
    let mut args = vec!["sign", target, key.to_str().unwrap()];
    args.extend_from_slice(extra);
    publish(&args);
}

/// A new P-256 key pair made by openssl in `dir`: (private PEM, public PEM).
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    let ok = Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&private)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(ok, "openssl could not make a P-256 key pair");
    (private, public)
}

/// `wasm` with a custom section naming `tag` appended: the same component, a blob of its own
/// (a registry shares blobs by digest, and a test that damages one must not damage another's).
pub fn unique(wasm: &Path, tag: &str, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(wasm).unwrap();
    let name = b"sluice-test";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(tag.as_bytes());
    assert!(section.len() < 128);
    bytes.push(0);
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(&section);
    let path = dir.join(format!("{tag}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The registry `cargo xtask test` started: `127.0.0.1:<port>`.
pub fn shared_registry() -> String {
    std::env::var("SLUICE_TEST_REGISTRY").expect(
        "SLUICE_TEST_REGISTRY is not set: run the tests with `cargo xtask test`, which starts \
         Debian's docker-registry on loopback",
    )
}

/// Where a blob of the shared registry is stored, to damage it on purpose.
pub fn shared_blob_path(digest: &str) -> PathBuf {
    let storage =
        std::env::var("SLUICE_TEST_REGISTRY_STORAGE").expect("SLUICE_TEST_REGISTRY_STORAGE");
    blob_path(Path::new(&storage), digest)
}

fn blob_path(storage: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    storage.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

/// A registry of a test's own, which it can stop.
pub struct PrivateRegistry {
    server: Option<Child>,
    pub host: String,
    _dir: tempfile::TempDir,
}

impl PrivateRegistry {
    pub fn start() -> PrivateRegistry {
        PrivateRegistry::start_with(None)
    }

    /// A registry that lets only `user` with `password` in (HTTP basic auth, htpasswd).
    pub fn start_with_login(user: &str, password: &str) -> PrivateRegistry {
        PrivateRegistry::start_with(Some((user, password)))
    }

    fn start_with(login: Option<(&str, &str)>) -> PrivateRegistry {
        let dir = tempfile::tempdir().unwrap();
        let auth = match login {
            None => String::new(),
            Some((user, password)) => {
                let htpasswd = dir.path().join("htpasswd");
                let hash = bcrypt::hash(password, 4).unwrap();
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: sluice-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: \
                 {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let server = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry (apt-get install docker-registry)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "docker-registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PrivateRegistry {
            server: Some(server),
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Stops the registry: from here on nothing can be pulled from it.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
