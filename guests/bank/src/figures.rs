//! The bank's aggregation over one batch of columns, free of any host API so the benchmark can
//! compile the very same code natively (`host/pipeline/benches`).

/// Running totals over the transactions seen so far.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankTotals {
    pub transactions: u64,
    pub balances: u64,
    pub balance_cents: i128,
    pub frauds: u64,
}

impl BankTotals {
    /// Adds one batch: `unknown_balances` rows have no balance (null).
    pub fn add(&mut self, balance_cents: &[i64], unknown_balances: usize, fraud: &[u8]) {
        self.transactions += balance_cents.len() as u64;
        // Null rows hold 0, so the plain sum is the sum over known balances.
        self.balance_cents += balance_cents.iter().map(|&c| i128::from(c)).sum::<i128>();
        self.balances += (balance_cents.len() - unknown_balances) as u64;
        self.frauds += fraud.iter().map(|&f| u64::from(f)).sum::<u64>();
    }
}
