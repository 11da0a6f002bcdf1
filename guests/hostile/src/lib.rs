//! Hostile transforms for Sluice's tests, one attack per cargo feature. Each runs with its own
//! tenant's scopes (the tests use the hospital's) and must be stopped by the host with an error
//! naming the cause, leaving every report untouched.

use sluice_guest::{Params, RunError, Summary, Transform};

struct Hostile;

impl Transform for Hostile {
    fn run(_params: Params) -> Result<Summary, RunError> {
        attack()
    }
}

/// Reads the bank's transactions with the hospital's agent.
#[cfg(feature = "read-other-tenant")]
fn attack() -> Result<Summary, RunError> {
    let txns = sluice_guest::Dataset::open("bank", "analytics", "transactions")?;
    txns.next_batch()?;
    Err(RunError::Failed("read the bank's data".into()))
}

/// Writes the retailer's report with the hospital's agent.
#[cfg(feature = "write-other-tenant")]
fn attack() -> Result<Summary, RunError> {
    sluice_guest::Report::create("retail")?.write_json("{\"owned\":true}")?;
    Err(RunError::Failed("wrote the retailer's report".into()))
}

/// Never returns and never calls the host: only the CPU-time limit can stop it.
#[cfg(feature = "spin")]
fn attack() -> Result<Summary, RunError> {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Allocates until something gives.
#[cfg(feature = "memory-hog")]
fn attack() -> Result<Summary, RunError> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![7u8; 16 << 20]));
    }
}

/// Imports `wasi:filesystem`: the host must refuse to load it at all.
#[cfg(feature = "filesystem")]
fn attack() -> Result<Summary, RunError> {
    let secrets =
        std::fs::read_to_string("/etc/passwd").map_err(|e| RunError::Failed(e.to_string()))?;
    Err(RunError::Failed(format!(
        "read {} bytes of /etc/passwd",
        secrets.len()
    )))
}

/// Imports `wasi:sockets`: the host must refuse to load it at all.
#[cfg(feature = "sockets")]
fn attack() -> Result<Summary, RunError> {
    let stream = std::net::TcpStream::connect("127.0.0.1:8080")
        .map_err(|e| RunError::Failed(e.to_string()))?;
    Err(RunError::Failed(format!("connected: {stream:?}")))
}

/// Writes half of its own report, then panics.
#[cfg(feature = "trap-mid-report")]
fn attack() -> Result<Summary, RunError> {
    let report = sluice_guest::Report::create(&sluice_guest::whoami().tenant)?;
    report.append(b"{\"tenant\":\"hospital\",\"figures\":{\"patient_visits\":")?;
    panic!("transform crashed half-way through its report");
}

/// Commits a bogus report of its own, then panics: the commit must not be published.
#[cfg(feature = "trap-after-commit")]
fn attack() -> Result<Summary, RunError> {
    sluice_guest::Report::create(&sluice_guest::whoami().tenant)?.write_json("{\"bogus\":true}")?;
    panic!("transform crashed after committing");
}

/// Calls the host as fast as it can, forever.
#[cfg(feature = "flood")]
fn attack() -> Result<Summary, RunError> {
    loop {
        std::hint::black_box(sluice_guest::whoami());
    }
}

/// Opens its own dataset over and over, keeping every handle (each holds a host file descriptor).
#[cfg(feature = "handle-hoard")]
fn attack() -> Result<Summary, RunError> {
    let me = sluice_guest::whoami();
    let mut hoard = Vec::new();
    loop {
        hoard.push(sluice_guest::Dataset::open(
            &me.tenant,
            "analytics",
            "visits",
        )?);
    }
}

/// Built without an attack feature: does nothing, so the crate still compiles in the workspace.
#[cfg(not(any(
    feature = "read-other-tenant",
    feature = "write-other-tenant",
    feature = "spin",
    feature = "memory-hog",
    feature = "filesystem",
    feature = "sockets",
    feature = "trap-mid-report",
    feature = "trap-after-commit",
    feature = "flood",
    feature = "handle-hoard"
)))]
fn attack() -> Result<Summary, RunError> {
    Err(RunError::Failed("built without an attack feature".into()))
}

sluice_guest::export_transform!(Hostile);
