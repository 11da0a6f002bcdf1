//! A throwaway PostgreSQL server on loopback for the tests: its own cluster in a temporary
//! directory, on a free port, stopped when the tests end. Uses the distribution's server
//! binaries (the distribution's `postgresql`, which `cargo xtask test` installs when missing); no
//! Docker, no system service.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// The superuser the tests connect as; the cluster lives only as long as one test run.
const ADMIN: &str = "sluice_admin";
const ADMIN_PASSWORD: &str = "sluice-test-admin";

pub struct TestServer {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    /// `postgres://sluice_admin:...@127.0.0.1:<port>/postgres`.
    pub url: String,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` (or `SLUICE_PG_BIN`).
fn server_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SLUICE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "the PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/initdb): \
         install the distribution's `postgresql` package (`cargo xtask test` does), or set \
         SLUICE_PG_BIN"
            .to_string()
    })
}

impl TestServer {
    /// Creates and starts the cluster; root runs the server as the `postgres` user, since
    /// PostgreSQL refuses to run as root.
    pub fn start() -> Result<TestServer, String> {
        let bin = server_bin()?;
        let as_postgres = is_root();
        let data = std::env::temp_dir().join(format!("sluice-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
        let pwfile = data.join("pwfile");
        std::fs::write(&pwfile, ADMIN_PASSWORD).map_err(|e| e.to_string())?;
        if as_postgres {
            run(
                "chown",
                &[
                    "-R".as_ref(),
                    "postgres:postgres".as_ref(),
                    data.as_os_str(),
                ],
            )?;
        }
        let cluster = data.join("cluster");
        let mut server = TestServer {
            url: String::new(),
            bin,
            data: data.clone(),
            as_postgres,
        };
        server.pg(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.as_os_str(),
                "-U".as_ref(),
                ADMIN.as_ref(),
                "--auth=scram-sha-256".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        )?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            data.display()
        );
        server.pg(
            "pg_ctl",
            &[
                "-D".as_ref(),
                cluster.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                data.join("server.log").as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )?;
        server.url = format!("postgres://{ADMIN}:{ADMIN_PASSWORD}@127.0.0.1:{port}/postgres");
        Ok(server)
    }

    fn pg(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.data)
            .output()
            .map_err(|e| format!("running {}: {e}", path.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let cluster = self.data.join("cluster");
        let _ = self.pg(
            "pg_ctl",
            &[
                "-D".as_ref(),
                cluster.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("running {program}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("{program} failed ({status})"))
}
