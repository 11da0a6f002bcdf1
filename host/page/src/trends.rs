//! What earlier nights stored under `runs` say about this one: each tenant's duration and rows
//! over the last nights, runs much slower than usual, and figures that changed.

use std::collections::BTreeMap;

use maud::{Markup, html};
use sluice_pipeline::record::{PastNight, TenantRecord};

use crate::guest_text::guest;
use crate::units;

/// Nights a trend covers, this one included.
pub const NIGHTS: usize = 14;
/// Figure changes the page lists; the rest are counted.
pub const MAX_CHANGES: usize = 200;

/// A run is called slower than usual past this multiple of its median, and this much slower.
const SLOWER_RATIO: f64 = 1.5;
const SLOWER_BY_MS: u64 = 250;

/// The nights before this one, oldest first.
pub struct History<'a> {
    past: &'a [PastNight],
}

/// One figure of one tenant that is not what it was the night before.
pub struct Change<'a> {
    pub tenant: &'a str,
    pub figure: &'a str,
    pub before: Option<&'a str>,
    pub now: Option<&'a str>,
}

impl<'a> History<'a> {
    pub fn new(past: &'a [PastNight]) -> History<'a> {
        let skip = past.len().saturating_sub(NIGHTS - 1);
        History {
            past: &past[skip..],
        }
    }

    pub fn nights(&self) -> usize {
        self.past.len()
    }

    /// `t`'s earlier runs, oldest first.
    fn runs_of(&self, t: &TenantRecord) -> impl Iterator<Item = &'a TenantRecord> {
        let id = t.id.clone();
        self.past.iter().filter_map(move |n| n.tenants.get(&id))
    }

    /// The median duration of `t`'s earlier successful runs, if it is much slower now.
    pub fn slower(&self, t: &TenantRecord) -> Option<u64> {
        let mut before: Vec<u64> = self
            .runs_of(t)
            .filter(|r| r.ok())
            .map(|r| r.elapsed_ms)
            .collect();
        if before.len() < 3 {
            return None;
        }
        before.sort_unstable();
        let median = before[before.len() / 2];
        (t.elapsed_ms as f64 > median as f64 * SLOWER_RATIO && t.elapsed_ms > median + SLOWER_BY_MS)
            .then_some(median)
    }

    /// `t`'s duration and rows over the nights, as two lines each scaled to its own maximum.
    pub fn sparkline(&self, t: &TenantRecord) -> Option<Markup> {
        let runs: Vec<&TenantRecord> = self.runs_of(t).chain(std::iter::once(t)).collect();
        if runs.len() < 2 {
            return None;
        }
        // One relative path per series: a flat night is `4 0`, a step `4-2`; a thousand rows
        // of trends are a third of a big night's page, so every byte here counts.
        let line = |value: &dyn Fn(&TenantRecord) -> u64| {
            let max = runs.iter().map(|r| value(r)).max().unwrap_or(0).max(1) as f64;
            let step = 58 / (runs.len() - 1);
            let ys: Vec<i64> = runs
                .iter()
                .map(|r| (15.0 - value(r) as f64 / max * 14.0).round() as i64)
                .collect();
            let mut d = format!("M1 {}l", ys[0]);
            for (i, pair) in ys.windows(2).enumerate() {
                let dy = pair[1] - pair[0];
                let sep = if i == 0 || dy < 0 { "" } else { " " };
                d.push_str(&format!("{sep}{step}{}{dy}", if dy < 0 { "" } else { " " }));
            }
            d
        };
        let range = |value: &dyn Fn(&TenantRecord) -> u64| {
            let lo = runs.iter().map(|r| value(r)).min().unwrap_or(0);
            let hi = runs.iter().map(|r| value(r)).max().unwrap_or(0);
            (lo, hi)
        };
        let (d0, d1) = range(&|r| r.elapsed_ms);
        let (r0, r1) = range(&|r| r.rows_read);
        let title = format!(
            "{} nights: {}–{}, {}–{} rows",
            runs.len(),
            units::duration(d0),
            units::duration(d1),
            units::count(r0),
            units::count(r1)
        );
        Some(html! {
            // Drawn in CSS pixels, sized and coloured by the stylesheet (duration first, rows
            // second): nothing to repeat on every row.
            svg {
                title { (title) }
                path d=(line(&|r| r.elapsed_ms)) {}
                path d=(line(&|r| r.rows_read)) {}
            }
        })
    }

    /// Figures that changed since each tenant's previous successful night, both runs
    /// successful, in the order of `tenants`.
    pub fn changes<'t>(&self, tenants: &'t [TenantRecord]) -> Vec<Change<'t>>
    where
        'a: 't,
    {
        let mut changes = Vec::new();
        for t in tenants.iter().filter(|t| t.ok()) {
            let Some(before) = self.runs_of(t).filter(|r| r.ok()).last() else {
                continue;
            };
            let was: BTreeMap<&str, &str> = before
                .figures
                .iter()
                .map(|(n, v)| (n.as_raw(), v.as_raw()))
                .collect();
            let is: BTreeMap<&str, &str> = t
                .figures
                .iter()
                .map(|(n, v)| (n.as_raw(), v.as_raw()))
                .collect();
            for (figure, now) in &is {
                if was.get(figure) != Some(now) {
                    changes.push(Change {
                        tenant: &t.id,
                        figure,
                        before: was.get(figure).copied(),
                        now: Some(now),
                    });
                }
            }
            for (figure, before) in was.iter().filter(|(f, _)| !is.contains_key(*f)) {
                changes.push(Change {
                    tenant: &t.id,
                    figure,
                    before: Some(before),
                    now: None,
                });
            }
        }
        changes
    }
}

/// The list of changed figures, at most [`MAX_CHANGES`] of them.
pub fn changes_list(changes: &[Change<'_>]) -> Markup {
    let shown = changes.len().min(MAX_CHANGES);
    html! {
        @if changes.is_empty() {
            p { "No figure changed since each tenant's previous night." }
        } @else {
            ul #changes {
                @for c in &changes[..shown] {
                    li {
                        b { (guest(c.tenant)) } " · " (guest(c.figure)) ": "
                        @match c.before { Some(v) => (guest(v)), None => i { "(new)" } }
                        " → "
                        @match c.now { Some(v) => (guest(v)), None => i { "(gone)" } }
                    }
                }
            }
            @if changes.len() > shown {
                p { "… and " (changes.len() - shown) " more changes not listed." }
            }
        }
    }
}
