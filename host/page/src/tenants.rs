//! The table of tenants: one row each, failures first, then those near a limit; what ran, how
//! long, how much, what the gate decided, and a meter per budgeted limit.

use maud::{Markup, html};
use sluice_pipeline::outcome::Gauge;
use sluice_pipeline::record::TenantRecord;
use sluice_sandbox::Limit;

use crate::guest_text::guest;
use crate::order::{NEAR_LIMIT, Standing, ordered, standing};
use crate::trends::History;
use crate::units;

/// The limits a row has a meter for, in column order, with their headings.
const GAUGES: [(Limit, &str); 6] = [
    (Limit::WallTime, "time"),
    (Limit::Memory, "memory"),
    (Limit::RowsRead, "rows"),
    (Limit::BytesRead, "bytes"),
    (Limit::HostCalls, "calls"),
    (Limit::ReportBytes, "report"),
];

/// Bytes of a failure's message a row shows; the whole kept message is one click away.
const CAUSE_SHOWN: usize = 160;

pub fn table(tenants: &[TenantRecord], never_ran: &[String], history: &History<'_>) -> Markup {
    let usual = usual_limits(tenants);
    html! {
        table #tenants {
            thead {
                tr {
                    th { "#" } th { "status" } th { "tenant" } th { "cause" } th { "agent" }
                    th { "plugin" } th { "cache" } th { "duration" } th { "rows" }
                    th { "bytes" } th title="gate decisions: allowed / denied" { "gate" }
                    @for ((limit, heading), usual) in GAUGES.iter().zip(usual) {
                        @match usual {
                            Some(l) => th title={ "limit " (units::of_limit(*limit, l))
                                " unless a meter says otherwise" } { (heading) },
                            None => th { (heading) },
                        }
                    }
                    th { "nearest limit" }
                    th title="duration (blue) and rows (purple), earlier nights to this one" {
                        "trend"
                    }
                }
            }
            tbody {
                @for (i, t) in ordered(tenants).into_iter().enumerate() {
                    (row(i + 1, t, history, &usual))
                }
                @for id in never_ran {
                    tr.fail {
                        td { "–" } td.bad { "NEVER RAN" } td { (guest(id)) }
                        td { "its shard left no summary" }
                        td colspan=(16) {}
                    }
                }
            }
        }
    }
}

fn row(rank: usize, t: &TenantRecord, history: &History<'_>, usual: &[Option<u64>; 6]) -> Markup {
    // Cells are styled by column (see the stylesheet), not by class: a thousand rows are most
    // of a page's bytes.
    let standing = standing(t);
    let class = match standing {
        Standing::Failed => Some("fail"),
        Standing::NearLimit => Some("near"),
        Standing::Fine => None,
    };
    html! {
        tr class=[class] {
            td { (rank) }
            @match (&t.error, standing) {
                (Some(e), _) => td.bad { "FAILED " (kind_name(e.kind)) },
                (None, Standing::NearLimit) => td.slower { "near limit" },
                _ => td.good { "ok" },
            }
            td { (guest(&t.id)) }
            td { (cause(t)) }
            td { (t.agent_end.as_deref().map(sluice_text::escape).unwrap_or_default()) }
            td {
                (t.language.as_deref().unwrap_or("")) " "
                (t.digest.as_deref().map(units::short_digest).unwrap_or("–"))
            }
            td { (t.origin.as_deref().unwrap_or("–")) }
            td {
                (units::duration(t.elapsed_ms))
                @if let Some(median) = history.slower(t) {
                    br; span.slower { "usually " (units::duration(median)) }
                }
            }
            td { (units::count(t.rows_read)) }
            td { (units::bytes(t.bytes_read)) }
            td { (units::count(t.allowed)) " / " (units::count(t.denied)) }
            @for (i, (limit, _)) in GAUGES.iter().enumerate() {
                td { (meter(*limit, t.budget.as_ref().map(|b| b.gauges()[i].1), usual[i])) }
            }
            td {
                @if let Some(budget) = &t.budget {
                    @let (limit, fraction) = budget.fullest();
                    @let heading = GAUGES.iter().find(|(l, _)| *l == limit).map_or("", |g| g.1);
                    (heading) " " (format!("{:.0}%", fraction * 100.0))
                }
            }
            td { (history.sparkline(t).unwrap_or_default()) }
        }
    }
}

/// Each limit most tenants share, said once in its column's heading (a night's tenants mostly
/// run under its defaults), so a meter names its limit only where the tenant's differs.
fn usual_limits(tenants: &[TenantRecord]) -> [Option<u64>; 6] {
    std::array::from_fn(|i| {
        let mut counts: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        for budget in tenants.iter().filter_map(|t| t.budget.as_ref()) {
            *counts.entry(budget.gauges()[i].1.limit).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|&(limit, n)| (n, std::cmp::Reverse(limit)))
            .map(|(limit, _)| limit)
    })
}

/// A bar of `gauge` against its limit: green, amber past half, red past [`NEAR_LIMIT`].
fn meter(limit: Limit, gauge: Option<Gauge>, usual: Option<u64>) -> Markup {
    let Some(g) = gauge else {
        return html! { "–" };
    };
    let fraction = g.fraction();
    let value = format!("{fraction:.2}");
    let value = value.trim_end_matches('0').trim_end_matches('.');
    let title = html! {
        (units::of_limit(limit, g.used))
        @if usual != Some(g.limit) { " of " (units::of_limit(limit, g.limit)) }
    };
    // Below `low` a meter is green with or without its regions: they are written only where
    // they change its colour, which is on few meters of a night.
    if fraction < 0.5 {
        return html! { meter value=(value) title=(title) {} };
    }
    html! {
        meter value=(value) low="0.5" high=(NEAR_LIMIT) optimum="0" title=(title) {}
    }
}

/// One line of why a tenant failed, and its last log lines behind a click.
fn cause(t: &TenantRecord) -> Markup {
    let Some(error) = &t.error else {
        return html! {};
    };
    let shown = sluice_text::escape(&error.message);
    let (line, cut) = match shown.char_indices().nth(CAUSE_SHOWN) {
        Some((at, _)) => (&shown[..at], true),
        None => (&shown[..], false),
    };
    html! {
        bdi { (line) } @if cut { "…" }
        @if cut || !t.log_tail.is_empty() {
            details {
                summary { "more" }
                @if cut { p { bdi { (shown) } } }
                @if !t.log_tail.is_empty() {
                    ul { @for l in &t.log_tail { li { (guest(l.as_raw())) } } }
                }
            }
        }
    }
}

fn kind_name(kind: sluice_pipeline::outcome::FailureKind) -> &'static str {
    use sluice_pipeline::outcome::FailureKind::*;
    match kind {
        Plugin => "plugin",
        Agent => "agent",
        Run => "run",
        Publish => "publish",
        Storage => "storage",
        NotRun => "not run",
    }
}
