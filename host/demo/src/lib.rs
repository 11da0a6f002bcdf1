//! Deterministic demo data for the seed's three tenants, at the seed's scale.
//!
//! The rows are random-looking but built so that a correct transform computes exactly the seed's
//! figures: averages come from values drawn in pairs mirrored around the target mean, and rates
//! from an exact count of flagged rows scattered by a permutation. Change the data and the
//! figures change with it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rusqlite::Connection;
use sluice_sandbox::{DatasetCursor, DatasetRef, DatasetSource as _};

use sluice_data::SqliteSource;
use sluice_data::outputs::files::{FileFormat, copy_to_file};
use sluice_data::outputs::postgres_tables::replace_table;

/// A tenant of the demo, as in the seed sample.
#[derive(Clone, Copy, Debug)]
pub struct DemoTenant {
    pub id: &'static str,
    pub name: &'static str,
    pub data_type: &'static str,
    pub dataset: &'static str,
    /// The figures a correct transform reports, in report order.
    pub figures: [(&'static str, &'static str); 3],
}

pub const DEMO_TENANTS: [DemoTenant; 3] = [
    DemoTenant {
        id: "hospital",
        name: "Metro Health System",
        data_type: "patient analytics",
        dataset: "visits",
        figures: [
            ("patient_visits", "12,847"),
            ("avg_stay", "3.2 days"),
            ("readmit_rate", "4.1%"),
        ],
    },
    DemoTenant {
        id: "bank",
        name: "First National Bank",
        data_type: "financial analytics",
        dataset: "transactions",
        figures: [
            ("transactions", "2.4M"),
            ("avg_balance", "$8,420"),
            ("fraud_rate", "0.02%"),
        ],
    },
    DemoTenant {
        id: "retail",
        name: "ShopWave Corp",
        data_type: "sales analytics",
        dataset: "orders",
        figures: [
            ("orders", "847K"),
            ("avg_order", "$67.30"),
            ("return_rate", "8.4%"),
        ],
    },
];

/// How many rows each demo table gets; `SEED_SCALE` reproduces the seed's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedScale {
    pub visits: u64,
    pub transactions: u64,
    pub orders: u64,
}

pub const SEED_SCALE: SeedScale = SeedScale {
    visits: 12_847,
    transactions: 2_400_000,
    orders: 847_000,
};

/// SplitMix64: tiny, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

/// Whether row `i` of `n` is one of exactly `flagged` rows, spread by a permutation
/// (`i * stride mod n` is a bijection when `stride` and `n` are coprime).
fn flagged(i: u64, n: u64, flagged: u64, stride: u64) -> bool {
    (u128::from(i) * u128::from(stride) % u128::from(n)) < u128::from(flagged)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A stride coprime with `n`, so [`flagged`] flags exactly the requested count.
fn stride_for(n: u64) -> u64 {
    (1_000_003..).find(|s| gcd(*s, n) == 1).unwrap_or(1)
}

/// `mean ± deviation` in mirrored pairs so the values average to exactly `mean`; an odd last
/// value is the mean itself.
fn mirrored(rng: &mut Rng, index: u64, count: u64, mean: i64, max_dev: u64, pair: &mut i64) -> i64 {
    if index + 1 == count && count % 2 == 1 {
        return mean;
    }
    if index.is_multiple_of(2) {
        *pair = rng.upto(max_dev) as i64;
        mean + *pair
    } else {
        mean - *pair
    }
}

/// Writes the three demo tenants' databases under `dir`, replacing earlier ones.
/// Returns the database paths.
pub fn seed_demo(dir: &Path, scale: SeedScale) -> anyhow::Result<Vec<PathBuf>> {
    Ok(vec![
        seed_hospital(dir, scale.visits)?,
        seed_bank(dir, scale.transactions)?,
        seed_orders(dir, "retail", scale.orders)?,
    ])
}

/// Writes the demo tenants' datasets under `dir` as `format` files,
/// `<dir>/<tenant>/analytics/<dataset>.<parquet|csv>`, with the same rows as [`seed_demo`]'s
/// databases (they are built first, then copied through Arrow). Returns the files written.
pub fn seed_demo_files(
    dir: &Path,
    scale: SeedScale,
    format: FileFormat,
) -> anyhow::Result<Vec<PathBuf>> {
    let staging = dir.join(".seeding-sqlite");
    let _ = std::fs::remove_dir_all(&staging);
    seed_demo(&staging, scale)?;
    let copied = copy_demo(&staging, |tenant, dataset, cursor| {
        let path = dir
            .join(tenant)
            .join("analytics")
            .join(format!("{dataset}.{}", format.extension()));
        copy_to_file(cursor, &path, format)?;
        Ok(path)
    });
    let _ = std::fs::remove_dir_all(&staging);
    copied
}

/// Loads the demo tenants' datasets into PostgreSQL through `client`: schema `<tenant>`
/// (created if missing) and a table per dataset, each replaced in one transaction, with the
/// same rows as [`seed_demo`]'s databases. Returns the tables written.
pub fn seed_demo_postgres(
    client: &mut postgres::Client,
    scale: SeedScale,
) -> anyhow::Result<Vec<String>> {
    let staging = std::env::temp_dir().join(format!("sluice-seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    seed_demo(&staging, scale)?;
    let copied = copy_demo_to_postgres(&staging, client);
    let _ = std::fs::remove_dir_all(&staging);
    copied
}

/// Copies the demo databases under `sqlite_dir` into PostgreSQL (see [`seed_demo_postgres`]).
pub fn copy_demo_to_postgres(
    sqlite_dir: &Path,
    client: &mut postgres::Client,
) -> anyhow::Result<Vec<String>> {
    copy_demo(sqlite_dir, |tenant, dataset, mut cursor| {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{tenant}\""))
            .with_context(|| format!("creating schema {tenant}"))?;
        let schema = cursor.schema().clone();
        let batches = std::iter::from_fn(|| cursor.next_batch(65_536).transpose())
            .map(|b| b.map_err(anyhow::Error::new));
        replace_table(client, tenant, dataset, &schema, batches)?;
        Ok(format!("{tenant}.{dataset}"))
    })
}

/// Calls `copy` with a cursor over every dataset of every demo tenant in the databases under
/// `sqlite_dir`; returns what it returns.
pub(crate) fn copy_demo<T>(
    sqlite_dir: &Path,
    mut copy: impl FnMut(&str, &str, Box<dyn DatasetCursor>) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let source = SqliteSource::new(sqlite_dir);
    let mut out = Vec::new();
    for tenant in DEMO_TENANTS {
        for dataset in source.list(tenant.id, "analytics")? {
            let named = DatasetRef::new(tenant.id, "analytics", &dataset)?;
            let cursor = source.open(&named, None, &sluice_sandbox::ReadContext::unbounded())?;
            out.push(copy(tenant.id, &dataset, cursor)?);
        }
    }
    Ok(out)
}

fn fresh_database(dir: &Path, tenant: &str) -> anyhow::Result<(Connection, PathBuf)> {
    let tenant_dir = dir.join(tenant);
    std::fs::create_dir_all(&tenant_dir)
        .with_context(|| format!("creating {}", tenant_dir.display()))?;
    let path = tenant_dir.join("analytics.db");
    // Build beside the final name and rename, so a reader never sees a half-seeded database.
    let tmp = tenant_dir.join("analytics.db.seeding");
    let _ = std::fs::remove_file(&tmp);
    let conn = Connection::open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    Ok((conn, path))
}

fn finish_database(conn: Connection, path: &Path) -> anyhow::Result<PathBuf> {
    conn.close().map_err(|(_, e)| e)?;
    let tmp = path.with_extension("db.seeding");
    std::fs::rename(&tmp, path).with_context(|| format!("moving {} into place", path.display()))?;
    Ok(path.to_path_buf())
}

fn seed_hospital(dir: &Path, n: u64) -> anyhow::Result<PathBuf> {
    let (mut conn, path) = fresh_database(dir, "hospital")?;
    conn.execute_batch(
        "CREATE TABLE visits (
            visit_id INTEGER PRIMARY KEY,
            patient_id INTEGER NOT NULL,
            ward TEXT NOT NULL,
            stay_days REAL,            -- NULL while the patient is still admitted
            readmitted BOOLEAN NOT NULL
        );",
    )?;
    let mut rng = Rng(0x405_917A1);
    let wards = [
        "cardiology",
        "oncology",
        "maternity",
        "orthopedics",
        "emergency",
    ];
    let readmits = (n * 41 + 500) / 1000; // 4.1%, rounded to a whole visit
    let stride = stride_for(n);
    // Every 100th visit is still open; the rest have a length of stay in tenths of a day.
    let open = |i: u64| i % 100 == 99;
    let closed = n - (0..n).filter(|&i| open(i)).count() as u64;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO visits (visit_id, patient_id, ward, stay_days, readmitted) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let (mut k, mut pair) = (0u64, 0i64);
        for i in 0..n {
            let stay = if open(i) {
                None
            } else {
                let tenths = mirrored(&mut rng, k, closed, 32, 22, &mut pair);
                k += 1;
                Some(tenths as f64 / 10.0)
            };
            insert.execute(rusqlite::params![
                i as i64 + 1,
                (rng.upto(8_999) + 1_000) as i64,
                wards[rng.upto(4) as usize],
                stay,
                flagged(i, n, readmits, stride),
            ])?;
        }
    }
    tx.commit()?;
    finish_database(conn, &path)
}

fn seed_bank(dir: &Path, n: u64) -> anyhow::Result<PathBuf> {
    let (mut conn, path) = fresh_database(dir, "bank")?;
    conn.execute_batch(
        "CREATE TABLE transactions (
            txn_id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL,
            amount_cents INTEGER NOT NULL,
            balance_cents INTEGER NOT NULL,
            is_fraud BOOLEAN NOT NULL
        );",
    )?;
    let mut rng = Rng(0xBA2C);
    let frauds = (n * 2 + 5_000) / 10_000; // 0.02%
    let stride = stride_for(n);
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO transactions (txn_id, account_id, amount_cents, balance_cents, is_fraud) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut pair = 0i64;
        for i in 0..n {
            let amount = rng.upto(500_000) as i64 - 250_000;
            insert.execute(rusqlite::params![
                i as i64 + 1,
                (rng.upto(49_999) + 1) as i64,
                amount,
                mirrored(&mut rng, i, n, 842_000, 800_000, &mut pair),
                flagged(i, n, frauds, stride),
            ])?;
        }
    }
    tx.commit()?;
    finish_database(conn, &path)
}

/// A retailer's `orders` table of `n` rows for `tenant` (the retail transform reads any tenant's);
/// with the seed's 847,000 rows it gives the seed's figures. Besides the columns the figures
/// come from it holds one column of every other type a source maps to Arrow: the order's day
/// (`DATE`), instant (`TIMESTAMP`, µs), total as `DECIMAL(12,2)` and a receipt id (`BLOB`).
pub fn seed_orders(dir: &Path, tenant: &str, n: u64) -> anyhow::Result<PathBuf> {
    let (mut conn, path) = fresh_database(dir, tenant)?;
    conn.execute_batch(
        "CREATE TABLE orders (
            order_id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL,
            region TEXT,               -- NULL when the customer gave none
            total_cents INTEGER NOT NULL,
            returned BOOLEAN NOT NULL,
            ordered_on DATE NOT NULL,
            ordered_at TIMESTAMP NOT NULL,
            total DECIMAL(12,2) NOT NULL,
            receipt BLOB               -- NULL for orders placed by phone
        );",
    )?;
    let mut rng = Rng(0x5409_3A7E);
    // The typed columns draw from their own stream, so the older columns keep their values.
    let mut typed = Rng(0x0D0E_5EED);
    let regions = ["north", "south", "east", "west", "online"];
    let returns = (n * 84 + 500) / 1000; // 8.4%
    let stride = stride_for(n);
    // Orders span ORDER_DAYS days from 2026-11-01, in order-id order.
    let first_day = days_from_civil(2026, 11, 1);
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO orders (order_id, customer_id, region, total_cents, returned, \
             ordered_on, ordered_at, total, receipt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut pair = 0i64;
        for i in 0..n {
            let region = (i % 97 != 0).then(|| regions[rng.upto(4) as usize]);
            let customer = (rng.upto(199_999) + 1) as i64;
            let cents = mirrored(&mut rng, i, n, 6_730, 6_000, &mut pair);
            let day = first_day + (i * ORDER_DAYS / n.max(1)) as i64;
            let at = day * 86_400_000_000 + (typed.upto(86_399_999) as i64) * 1_000;
            let receipt = (i % 13 != 0).then(|| typed.next().to_le_bytes());
            insert.execute(rusqlite::params![
                i as i64 + 1,
                customer,
                region,
                cents,
                flagged(i, n, returns, stride),
                civil_from_days(day),
                at,
                format!("{}.{:02}", cents / 100, cents % 100),
                receipt,
            ])?;
        }
    }
    tx.commit()?;
    finish_database(conn, &path)
}

/// Days the demo's orders span.
pub const ORDER_DAYS: u64 = 28;

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2026, 11, 28)), "2026-11-28");
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(civil_from_days(-1), "1969-12-31");
    }

    #[test]
    fn flagged_marks_exactly_the_requested_count() {
        for n in [12_847u64, 1_000, 847_000] {
            let stride = stride_for(n);
            let want = n / 10;
            assert_eq!(
                (0..n).filter(|&i| flagged(i, n, want, stride)).count() as u64,
                want
            );
        }
    }

    #[test]
    fn mirrored_values_average_to_the_mean() {
        for count in [1u64, 2, 7, 1_000] {
            let mut rng = Rng(1);
            let mut pair = 0;
            let sum: i64 = (0..count)
                .map(|i| mirrored(&mut rng, i, count, 100, 50, &mut pair))
                .sum();
            assert_eq!(sum, 100 * count as i64);
        }
    }
}
