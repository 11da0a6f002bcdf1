//! Hostile transforms for Sluice's tests: every attack on the sandbox we know of, each stopped by
//! the host with an error naming its cause, leaving the host and every other tenant untouched.
//!
//! The list of attacks is `sluice-hostile-list`'s; this crate must have a function for each of
//! its `run` attacks (or it does not build), chosen at run time by the `attack` parameter. Built
//! with a feature, it is instead the `import` attack of that name, which the host refuses to load.
//! Attacks run as whatever tenant their writ says; `other-tenant` (default `bank`) names the
//! tenant they reach for.

// An import attack is the whole component: the run-time attacks are built but unused.
#![cfg_attr(
    any(feature = "filesystem", feature = "sockets", feature = "wasi_surface"),
    allow(dead_code, unused_imports)
)]

mod attacks;

use sluice_guest::{Params, RunError, Summary, Transform, param};

struct Hostile;

macro_rules! dispatch {
    (run: [$($run:ident),*], import: [$($import:ident),*], wat: [$($wat:ident),*] $(,)?) => {
        fn dispatch(attack: &str, params: &Params) -> Result<Summary, RunError> {
            match attack {
                $(stringify!($run) => attacks::$run(params),)*
                other => Err(RunError::Failed(format!("no attack named '{other}'"))),
            }
        }
    };
}

sluice_hostile_list::foreach_hostile!(dispatch);

impl Transform for Hostile {
    #[cfg(any(feature = "filesystem", feature = "sockets", feature = "wasi_surface"))]
    fn run(_: Params) -> Result<Summary, RunError> {
        attacks::imports::attack()
    }

    #[cfg(not(any(feature = "filesystem", feature = "sockets", feature = "wasi_surface")))]
    fn run(params: Params) -> Result<Summary, RunError> {
        // Ordinary readers and writers, for the tests that make a tenant's data or outputs the
        // weapon (`sluice-hostile-list`'s `foreach_hostile_data!`).
        match param(&params, "reader") {
            Some("everything") => return attacks::read_everything(&params),
            Some("open-many") => return attacks::open_many(&params),
            Some("two-tables") => return attacks::two_tables(&params),
            Some(other) => return Err(RunError::Failed(format!("no reader named '{other}'"))),
            None => {}
        }
        match param(&params, "attack") {
            Some(attack) => dispatch(attack, &params),
            None => Err(RunError::Failed("parameter 'attack' is required".into())),
        }
    }
}

sluice_guest::export_transform!(Hostile);
