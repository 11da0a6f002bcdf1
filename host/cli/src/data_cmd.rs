//! `sluice data seed`: the demo tenants' datasets, in the store a user asks for.

use std::time::Instant;

use sluice_data::FileFormat;
use sluice_data::sources::postgres::connect;
use sluice_demo::{SEED_SCALE, seed_demo, seed_demo_files, seed_demo_postgres};

use crate::args::{SeedArgs, SeedFormatArg};
use crate::exit;

pub fn seed(args: SeedArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let dir = || {
        args.dir.as_deref().ok_or_else(|| {
            anyhow::anyhow!("--format sqlite, parquet and csv write files: give --dir DIR")
        })
    };
    let paths = match args.format {
        SeedFormatArg::Sqlite => seed_demo(dir()?, SEED_SCALE)?,
        SeedFormatArg::Parquet => seed_demo_files(dir()?, SEED_SCALE, FileFormat::Parquet)?,
        SeedFormatArg::Csv => seed_demo_files(dir()?, SEED_SCALE, FileFormat::Csv)?,
        SeedFormatArg::Postgres => {
            let url_env = args.url_env.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "--format postgres needs --url-env VAR, the environment variable holding \
                     the connection URL of a role that may create schemas"
                )
            })?;
            let mut client = connect(url_env)?;
            let tables = seed_demo_postgres(&mut client, SEED_SCALE)?;
            for table in &tables {
                println!("seeded postgres table {table}");
            }
            Vec::new()
        }
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
