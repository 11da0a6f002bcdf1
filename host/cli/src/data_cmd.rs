//! `sluice data seed`: the demo tenants' datasets, in the store a user asks for.

use std::time::Instant;

use sluice_pipeline::{FileFormat, SEED_SCALE, seed_demo, seed_demo_files};

use crate::args::{SeedArgs, SeedFormatArg};
use crate::exit;

pub fn seed(args: SeedArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let paths = match args.format {
        SeedFormatArg::Sqlite => seed_demo(&args.dir, SEED_SCALE)?,
        SeedFormatArg::Parquet => seed_demo_files(&args.dir, SEED_SCALE, FileFormat::Parquet)?,
        SeedFormatArg::Csv => seed_demo_files(&args.dir, SEED_SCALE, FileFormat::Csv)?,
    };
    for path in &paths {
        println!("seeded {}", path.display());
    }
    println!(
        "{} visits, {} transactions, {} orders in {:.1} s",
        SEED_SCALE.visits,
        SEED_SCALE.transactions,
        SEED_SCALE.orders,
        started.elapsed().as_secs_f64()
    );
    Ok(exit::OK)
}
