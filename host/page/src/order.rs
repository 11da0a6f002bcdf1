//! The order tenants are listed in: what needs the operator first.

use sluice_pipeline::record::TenantRecord;

/// A run this close to any of its limits (0 to 1) is listed as near its limits.
pub const NEAR_LIMIT: f64 = 0.8;

/// Where a tenant stands, most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Failed,
    NearLimit,
    Fine,
}

pub fn standing(t: &TenantRecord) -> Standing {
    if !t.ok() {
        Standing::Failed
    } else if fullest(t) >= NEAR_LIMIT {
        Standing::NearLimit
    } else {
        Standing::Fine
    }
}

/// How close its run came to its nearest limit, 0 to 1.
pub fn fullest(t: &TenantRecord) -> f64 {
    t.budget.as_ref().map_or(0.0, |b| b.fullest().1)
}

/// Failures first, then tenants near a limit (nearest first), then the rest; configuration
/// order within each.
pub fn ordered(tenants: &[TenantRecord]) -> Vec<&TenantRecord> {
    let mut listed: Vec<&TenantRecord> = tenants.iter().collect();
    listed.sort_by(|a, b| {
        let (sa, sb) = (standing(a), standing(b));
        sa.cmp(&sb).then_with(|| {
            if sa == Standing::NearLimit {
                fullest(b).total_cmp(&fullest(a))
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
    listed
}
