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
    html! {
        table #tenants {
            thead {
                tr {
                    th { "#" } th { "status" } th { "tenant" } th { "cause" } th { "agent" }
                    th { "plugin" } th { "cache" } th { "duration" } th { "rows" }
                    th { "bytes" } th title="gate decisions: allowed / denied" { "gate" }
                    @for (_, heading) in GAUGES { th.gauge { (heading) } }
                    th { "nearest limit" }
                    th title="duration (blue) and rows (purple), earlier nights to this one" {
                        "trend"
                    }
                }
            }
            tbody {
                @for (i, t) in ordered(tenants).into_iter().enumerate() {
                    (row(i + 1, t, history))
                }
                @for id in never_ran {
                    tr.fail {
                        td.n { "–" } td.bad { "NEVER RAN" } td { (guest(id)) }
                        td.cause { "its shard left no summary" }
                        td colspan=(16) {}
                    }
                }
            }
        }
    }
}

fn row(rank: usize, t: &TenantRecord, history: &History<'_>) -> Markup {
    let standing = standing(t);
    let class = match standing {
        Standing::Failed => "fail",
        Standing::NearLimit => "near",
        Standing::Fine => "",
    };
    html! {
        tr class=(class) id={"t-" (rank)} {
            td.n { (rank) }
            @match (&t.error, standing) {
                (Some(e), _) => td.bad { "FAILED " (kind_name(e.kind)) },
                (None, Standing::NearLimit) => td.slower { "near limit" },
                _ => td.good { "ok" },
            }
            td { (guest(&t.id)) }
            td.cause { (cause(t)) }
            td { (t.agent_end.as_deref().map(sluice_text::escape).unwrap_or_default()) }
            td.mono {
                (t.language.as_deref().unwrap_or("")) " "
                (t.digest.as_deref().map(units::short_digest).unwrap_or("–"))
            }
            td { (t.origin.as_deref().unwrap_or("–")) }
            td.n {
                (units::duration(t.elapsed_ms))
                @if let Some(median) = history.slower(t) {
                    br; span.slower { "usually " (units::duration(median)) }
                }
            }
            td.n { (units::count(t.rows_read)) }
            td.n { (units::bytes(t.bytes_read)) }
            td.n { (units::count(t.allowed)) " / " (units::count(t.denied)) }
            @for (limit, _) in GAUGES {
                td { (meter(limit, t.budget.as_ref().map(|b| gauge_of(b, limit)))) }
            }
            td.nw {
                @if let Some(budget) = &t.budget {
                    @let (limit, fraction) = budget.fullest();
                    (limit.name()) " " (format!("{:.0}%", fraction * 100.0))
                }
            }
            td { (history.sparkline(t).unwrap_or_default()) }
        }
    }
}

fn gauge_of(budget: &sluice_pipeline::outcome::BudgetUse, limit: Limit) -> Gauge {
    budget
        .gauges()
        .into_iter()
        .find(|(l, _)| *l == limit)
        .map_or_else(Gauge::default, |(_, g)| g)
}

/// A bar of `gauge` against its limit: green, amber past half, red past [`NEAR_LIMIT`].
fn meter(limit: Limit, gauge: Option<Gauge>) -> Markup {
    let Some(g) = gauge else {
        return html! { "–" };
    };
    html! {
        meter value=(format!("{:.2}", g.fraction())) low="0.5" high=(NEAR_LIMIT) optimum="0"
            title={ (units::of_limit(limit, g.used)) " of " (units::of_limit(limit, g.limit)) } {}
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
