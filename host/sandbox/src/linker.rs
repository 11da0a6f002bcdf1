//! The guest's entire surface, in one place: the `transform` world plus the WASI interfaces of
//! the plugin's [`WasiSurface`], each linked once.
//!
//! Deny by default means *not linked*: a component importing an interface its surface does not
//! have fails to load with an error naming the import, instead of loading and finding a
//! capability that says no. `wasi:http` is in no surface.
//!
//! [`WasiSurface::Basic`], what Rust's `wasm32-wasip2` std imports whatever the program does:
//! - `wasi:io/{error,poll,streams}`: the stream types of stdout/stderr.
//! - `wasi:cli/{environment,exit,stdin,stdout,stderr,terminal-*}`: std's startup and panic path.
//!   The environment and arguments are empty, stdin is closed, stdout/stderr go to the run's
//!   capped log, no terminal is attached.
//! - `wasi:clocks/{wall-clock,monotonic-clock}`: real clocks. They carry no tenant data, and a
//!   transform may time its own work; reports must not depend on them (the tenant transforms
//!   don't, which is why runs are byte-for-byte reproducible). The monotonic clock is Sluice's
//!   own (`host/clocks.rs`): a guest waiting on it wakes at the run's deadline.
//! - `wasi:random/{random,insecure,insecure-seed}`: std's `HashMap` seeds itself from here. Real
//!   randomness carries no data either.
//!
//! [`WasiSurface::Interpreter`] adds what an interpreter (CPython) imports at startup, granting
//! nothing through it:
//! - `wasi:filesystem/{types,preopens}`: no directory is preopened, so there is no path to open;
//! - `wasi:sockets/*`: TCP and UDP are refused, every address is refused, name lookup is off.
//!
//! Every WASI call is counted against the run's `host-calls` on its way in (see the views below).

use wasmtime::Engine;
use wasmtime::StoreContextMut;
use wasmtime::component::{Component, HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliCtxView, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets, sync};
use wasmtime_wasi::random::{WasiRandom, WasiRandomCtx, WasiRandomView};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsCtxView, WasiSocketsView};

use crate::bindings::Transform;
use crate::bindings::sluice::etl::types;
use crate::host::clocks::{RunClockView, RunClocks};
use crate::host::datasets::OpenDataset;
use crate::state::HostState;

/// Which WASI interfaces a plugin may import. Neither grants a file, a socket, a variable or an
/// argument; they differ in what loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WasiSurface {
    /// Rust's std basics. A component importing the filesystem or sockets is refused.
    Basic,
    /// The basics plus a filesystem with no preopened directory and sockets that refuse
    /// everything: what an interpreter such as CPython imports at startup.
    Interpreter,
}

impl WasiSurface {
    /// The interface namespaces linked: used to name, in an error, the imports a rejected
    /// component asked for. The linker itself is the authority.
    fn provided(self) -> &'static [&'static str] {
        const BASIC: &[&str] = &[
            "wasi:io/",
            "wasi:cli/",
            "wasi:clocks/",
            "wasi:random/",
            "sluice:etl/",
        ];
        const INTERPRETER: &[&str] = &[
            "wasi:io/",
            "wasi:cli/",
            "wasi:clocks/",
            "wasi:random/",
            "wasi:filesystem/",
            "wasi:sockets/",
            "sluice:etl/",
        ];
        match self {
            WasiSurface::Basic => BASIC,
            WasiSurface::Interpreter => INTERPRETER,
        }
    }
}

/// The imports of `component` that `surface` does not provide, e.g. `wasi:filesystem/types@0.2.6`.
pub(crate) fn unprovided_imports(
    component: &Component,
    engine: &Engine,
    surface: WasiSurface,
) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !surface.provided().iter().any(|p| name.starts_with(p)))
        .collect()
}

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// The views WASI's functions see. Each is asked for once per call, so each counts that call
/// against the run's host-call budget on its way: WASI calls are budgeted like Sluice's own.
fn io(s: &mut HostState) -> &mut ResourceTable {
    s.count_wasi_call();
    &mut s.table
}

fn cli(s: &mut HostState) -> WasiCliCtxView<'_> {
    s.count_wasi_call();
    s.cli()
}

fn wall_clock(s: &mut HostState) -> WasiClocksCtxView<'_> {
    s.count_wasi_call();
    s.clocks()
}

fn monotonic_clock(s: &mut HostState) -> RunClockView<'_> {
    s.count_wasi_call();
    RunClockView {
        table: &mut s.table,
        clock: &s.clock,
    }
}

fn random(s: &mut HostState) -> &mut WasiRandomCtx {
    s.count_wasi_call();
    s.random()
}

fn filesystem(s: &mut HostState) -> WasiFilesystemCtxView<'_> {
    s.count_wasi_call();
    s.filesystem()
}

fn sockets(s: &mut HostState) -> WasiSocketsCtxView<'_> {
    s.count_wasi_call();
    s.sockets()
}

/// The linker for plugins of `surface`: one `add_to_linker` per interface.
pub(crate) fn linker(engine: &Engine, surface: WasiSurface) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    let l = &mut linker;

    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<HostState, HasIo>(l, io)?;
    sync::io::poll::add_to_linker::<HostState, HasIo>(l, io)?;
    sync::io::streams::add_to_linker::<HostState, HasIo>(l, io)?;

    cli::environment::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, self::cli)?;

    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, wall_clock)?;
    clocks::monotonic_clock::add_to_linker::<HostState, RunClocks>(l, monotonic_clock)?;

    random::random::add_to_linker::<HostState, WasiRandom>(l, self::random)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, self::random)?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, self::random)?;

    if surface == WasiSurface::Interpreter {
        filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(l, self::filesystem)?;
        sync::filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, self::filesystem)?;

        let network = sockets::network::LinkOptions::default();
        sockets::network::add_to_linker::<HostState, WasiSockets>(l, &network, self::sockets)?;
        sockets::instance_network::add_to_linker::<HostState, WasiSockets>(l, self::sockets)?;
        sockets::ip_name_lookup::add_to_linker::<HostState, WasiSockets>(l, self::sockets)?;
        sockets::tcp_create_socket::add_to_linker::<HostState, WasiSockets>(l, self::sockets)?;
        sync::sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, self::sockets)?;
        sync::sockets::udp_create_socket::add_to_linker::<HostState, WasiSockets>(
            l,
            self::sockets,
        )?;
        sync::sockets::udp::add_to_linker::<HostState, WasiSockets>(l, self::sockets)?;
    }

    Transform::add_to_linker::<HostState, HasSelf<HostState>>(l, |s| s)?;
    link_next_batch(l)?;
    Ok(linker)
}

/// The WIT interface `next-batch` belongs to, as the component imports it.
const DATASETS: &str = "sluice:etl/datasets@0.2.0";

/// `[method]dataset.next-batch` again, in place of bindgen's: its signature returns owned
/// vectors, a copy of every batch on its way to the guest; this one lowers the batch from
/// Arrow's buffers (see `lowered.rs`). Errors go through the same `convert_error` as every
/// other call.
fn link_next_batch(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.allow_shadowing(true);
    let linked = l.instance(DATASETS)?.func_wrap(
        "[method]dataset.next-batch",
        |mut store: StoreContextMut<'_, HostState>,
         (dataset, max_rows): (Resource<OpenDataset>, u32)| {
            let state = store.data_mut();
            let result = match state.read_batch(dataset, max_rows) {
                Ok(batch) => Ok(batch),
                Err(e) => Err(types::Host::convert_error(state, e)?),
            };
            Ok((result,))
        },
    );
    l.allow_shadowing(false);
    linked
}

#[cfg(test)]
mod tests {
    /// The hand-linked `next-batch` replaces bindgen's only while the interface's name and
    /// version are the WIT's: a bumped version would leave it linked under a name no guest
    /// imports.
    #[test]
    fn next_batch_is_linked_under_the_wits_package_version() {
        let wit = include_str!("../../../wit/etl.wit");
        let package = wit
            .lines()
            .find_map(|l| l.trim().strip_prefix("package "))
            .and_then(|p| p.strip_suffix(';'))
            .expect("a package line");
        let (name, version) = package.split_once('@').expect("a versioned package");
        assert_eq!(super::DATASETS, format!("{name}/datasets@{version}"));
        assert!(wit.contains("next-batch: func(max-rows: u32) -> result<option<batch>, error>;"));
    }
}
