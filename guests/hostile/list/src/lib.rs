//! The one list of hostile guests. `guests/hostile` dispatches on it (an attack without a function
//! does not build), `cargo xtask guests` builds from it, and `tests/hostile.rs` asserts a test
//! exists for every entry (an attack without a test does not compile), as Wasmtime's
//! `foreach_*!` test-program macros do.
//!
//! - `run`: attacks in the one `hostile.wasm` component, chosen by its `attack` parameter;
//! - `import`: components built with the cargo feature of that name, refused when loaded;
//! - `wat`: hand-written components in `guests/hostile/wat/<name>.wat`, refused when loaded.

/// Calls `$m! { run: [...], import: [...], wat: [...] }` with every hostile guest.
#[macro_export]
macro_rules! foreach_hostile {
    ($m:ident) => {
        $m! {
            run: [
                // Reaching other tenants.
                read_other_tenant,
                list_other_tenant,
                write_other_tenant,
                write_other_tenant_table,
                // Time.
                spin,
                sleep_forever,
                sleep_in_a_loop,
                read_forever,
                // Memory and the engine.
                memory_hog,
                stack_overflow,
                // Unbounded input.
                huge_tenant_name,
                long_names_denied,
                huge_failure_message,
                huge_log_line,
                figures_aliasing_one_string,
                too_many_figures,
                long_figure_value,
                // Forged output.
                forged_output,
                forged_figures,
                forged_denial,
                forged_limit,
                forged_invisible,
                // Markup for the night's page.
                page_markup,
                page_markup_failure,
                // Reports that are not JSON to their readers.
                report_invalid_utf8,
                report_lone_surrogate,
                report_duplicate_keys,
                report_huge_number,
                report_deep_nesting,
                report_flood,
                // Output tables that lie about their shape, or never end.
                table_lies_about_rows,
                table_bad_offsets,
                table_flood,
                table_many,
                table_empty_appends,
                // Audit volume.
                alternating_calls,
                denial_spray,
                // Calls, handles, faults.
                host_call_flood,
                wasi_call_flood,
                stdout_flood,
                pollable_hoard,
                dataset_hoard,
                forged_handle,
                stale_handle,
                wrong_type_handle,
                trap_mid_report,
                trap_after_commit,
                exit_with_code
            ],
            import: [filesystem, sockets, wasi_surface],
            wat: [many_instances, many_memories],
        }
    };
}

macro_rules! names {
    (run: [$($run:ident),*], import: [$($import:ident),*], wat: [$($wat:ident),*] $(,)?) => {
        /// Attacks of `hostile.wasm`, by `attack` parameter.
        pub const RUN: &[&str] = &[$(stringify!($run)),*];
        /// Cargo features of `guests/hostile`, each built to `hostile-<feature>.wasm` (`_` written `-`).
        pub const IMPORT: &[&str] = &[$(stringify!($import)),*];
        /// Components in `guests/hostile/wat/<name>.wat`.
        pub const WAT: &[&str] = &[$(stringify!($wat)),*];
    };
}

foreach_hostile!(names);

/// Calls `$m! { [...] }` with every attack made of a tenant's own data: files and tables the
/// tests build in mallory's data directory, read by `hostile.wasm`'s ordinary readers.
/// `host/cli/tests/hostile_data.rs` must have a test (a night with mallory first) per attack.
#[macro_export]
macro_rules! foreach_hostile_data {
    ($m:ident) => {
        $m! {
            [
                // The process must not end.
                parquet_deep_schema,
                // Memory must not follow the file's claims.
                csv_wide,
                csv_huge_header,
                csv_huge_types,
                csv_long_record,
                parquet_wide,
                parquet_dictionary_bomb,
                parquet_dictionary_bomb_opened_16_times,
                parquet_page_claims_2_gib,
                // The data directory is a jail.
                symlink_to_host_environment,
                symlink_to_other_tenant,
                hard_link_to_other_tenant,
                fifo_instead_of_a_file,
                tenant_directory_is_a_symlink
            ]
        }
    };
}

macro_rules! data_names {
    ([$($attack:ident),*]) => {
        /// Attacks of a tenant's data, by name.
        pub const DATA: &[&str] = &[$(stringify!($attack)),*];
    };
}

foreach_hostile_data!(data_names);

/// Calls `$m! { [...] }` with every attack of the hostile Python and JavaScript guests
/// (`guests/python/transforms/hostile.py`, `guests/js/transforms/hostile.js`, chosen by their
/// `attack` parameter): what an interpreter makes possible beyond the Rust guest's attacks.
/// `tests/interpreted.rs` must have a test per attack and language.
#[macro_export]
macro_rules! foreach_interpreted_hostile {
    ($m:ident) => {
        $m! {
            [
                read_passwd,
                read_own_plugin,
                read_env,
                connect_broker,
                http_request,
                spawn_process,
                read_other_tenant,
                table_lies_about_rows,
                spin,
                memory_hog,
                recurse
            ]
        }
    };
}

macro_rules! interpreted_names {
    ([$($attack:ident),*]) => {
        /// Attacks of `hostile-py.wasm` and `hostile-js.wasm`, by `attack` parameter.
        pub const INTERPRETED: &[&str] = &[$(stringify!($attack)),*];
    };
}

foreach_interpreted_hostile!(interpreted_names);

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_across_kinds() {
        let mut all: Vec<&str> = [super::RUN, super::IMPORT, super::WAT].concat();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count);
        assert!(count >= 25, "{count} hostile cases");
    }
}
