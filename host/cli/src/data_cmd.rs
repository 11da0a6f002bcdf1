//! `sluice data seed`: the demo tenants' databases.

use std::time::Instant;

use sluice_pipeline::{SEED_SCALE, seed_demo};

use crate::args::SeedArgs;
use crate::exit;

pub fn seed(args: SeedArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let paths = seed_demo(&args.dir, SEED_SCALE)?;
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
