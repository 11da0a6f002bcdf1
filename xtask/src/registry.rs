//! A throwaway OCI registry on loopback for the tests: Debian's `docker-registry` (CNCF
//! Distribution) on a free port with a storage directory of its own, no auth, stopped (and its
//! storage removed) when the tests end.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestRegistry {
    server: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// Its storage, which tests may damage on purpose (a truncated blob).
    pub storage: PathBuf,
    dir: PathBuf,
}

impl TestRegistry {
    pub fn start() -> Result<TestRegistry, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let dir =
            std::env::temp_dir().join(format!("sluice-registry-{}-{port}", std::process::id()));
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage)
            .map_err(|e| format!("creating {}: {e}", storage.display()))?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let server = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting docker-registry: {e}"))?;
        let mut registry = TestRegistry {
            server,
            host: format!("127.0.0.1:{port}"),
            storage,
            dir,
        };
        crate::wait_ready(
            &format!("docker-registry on port {port}"),
            &mut registry.server,
            Duration::from_secs(30),
            || ping(port),
        )?;
        Ok(registry)
    }

    /// The environment that points the tests at this registry.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SLUICE_TEST_REGISTRY", self.host.clone()),
            (
                "SLUICE_TEST_REGISTRY_STORAGE",
                self.storage.display().to_string(),
            ),
        ]
    }
}

/// `GET /v2/`: 200 once the registry serves.
fn ping(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
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

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
