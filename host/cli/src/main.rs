//! The `sluice` command: parses arguments, calls one library function, maps the outcome to an
//! exit code. Everything else lives in the libraries.

mod args;
mod audit_cmd;
mod broker;
mod broker_cmd;
mod cache_cmd;
mod data_cmd;
mod k8s_cmd;
mod new_cmd;
mod plugin_cmd;
mod print;
mod run_cmd;
mod status_cmd;
mod try_cmd;

use std::process::ExitCode;

/// mimalloc rather than the C library's allocator: a tenant's row groups are decoded on several
/// threads at once, each allocating and freeing Arrow buffers of ~128 KiB per batch, which the C
/// library serves with `mmap`/`munmap` and page faults that serialize the threads (measured:
/// two decode threads took 0.78 of one's time with glibc's malloc, 0.62-0.74 with mimalloc;
/// BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;

/// Exit codes, as documented in `sluice --help`.
pub mod exit {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// A transform (or a tenant) failed; the rest still ran.
    pub const FAILED: u8 = 1;
    /// Bad usage or configuration: nothing ran.
    pub const USAGE: u8 = 2;
    /// A cross-tenant access was allowed.
    pub const ISOLATION_VIOLATED: u8 = 3;
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("sluice: {err:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn run(cli: args::Cli) -> anyhow::Result<u8> {
    match cli.command {
        args::Command::Try(a) => try_cmd::run(a),
        args::Command::New(a) => new_cmd::run(a),
        args::Command::Run(a) => run_cmd::run(a),
        args::Command::Status(a) => status_cmd::status(a),
        args::Command::K8s(a) => k8s_cmd::k8s(a),
        args::Command::VerifyIsolation(a) => run_cmd::verify_isolation(a),
        args::Command::Digest(a) => run_cmd::digest(&a.files),
        args::Command::Lock(a) => plugin_cmd::lock(a),
        args::Command::Vet(a) => plugin_cmd::vet(a),
        args::Command::Promote(a) => plugin_cmd::promote(a),
        args::Command::Broker(args::BrokerCommand::Dev(a)) => broker_cmd::dev(a),
        args::Command::Data(args::DataCommand::Seed(a)) => data_cmd::seed(a),
        args::Command::Audit(args::AuditCommand::Verify(a)) => audit_cmd::verify(a),
        args::Command::Audit(args::AuditCommand::Show(a)) => audit_cmd::show(a),
        args::Command::Cache(args::CacheCommand::Ls(a)) => cache_cmd::ls(a),
        args::Command::Cache(args::CacheCommand::Clear(a)) => cache_cmd::clear(a),
    }
}
