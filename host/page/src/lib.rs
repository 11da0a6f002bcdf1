//! A night as one self-contained HTML page: what an on-call operator reads at a glance.
//!
//! [`render`] draws a [`NightRecord`] (a night just run, or one rebuilt from what its shards
//! stored) and the nights before it: the verdict first, then the tenants that need attention,
//! the isolation proof, the audit chains, a timeline and the trends. The page is inline HTML,
//! CSS and SVG with no script and no request of any kind (its Content-Security-Policy forbids
//! both), rendered through maud, whose splices escape; every string a tenant wrote goes through
//! [`guest_text::guest`] as well.

mod guest_text;
mod order;
mod style;
mod tenants;
mod timeline;
mod trends;
mod units;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use sluice_pipeline::record::{NightRecord, PastNight, ShardRecord, Verdict};

pub use order::NEAR_LIMIT;
pub use trends::NIGHTS as TREND_NIGHTS;

use crate::guest_text::guest;
use crate::order::{Standing, standing};
use crate::trends::History;

/// The page of `night`; `past` are the nights stored before it, oldest first (only the last
/// [`TREND_NIGHTS`]` - 1` are drawn).
pub fn render(night: &NightRecord, past: &[PastNight]) -> String {
    let history = History::new(past);
    let failed = night
        .tenants
        .iter()
        .filter(|t| standing(t) == Standing::Failed)
        .count();
    let near = night
        .tenants
        .iter()
        .filter(|t| standing(t) == Standing::NearLimit)
        .count();
    let title = match &night.run_id {
        Some(id) => format!(
            "Night {} · {}",
            sluice_text::escape(id),
            night.verdict.as_str()
        ),
        None => format!("Night · {}", night.verdict.as_str()),
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(style::content_security_policy());
                meta name="referrer" content="no-referrer";
                meta name="viewport" content="width=device-width";
                title { (title) }
                style { (PreEscaped(style::CSS)) }
            }
            body {
                h1 {
                    span.verdict.(verdict_class(night.verdict)) #verdict {
                        (night.verdict.as_str())
                    }
                    " Night " @if let Some(id) = &night.run_id { b #run-id { (guest(id)) } }
                }
                p.facts #facts {
                    "Started " b { (units::utc(night.started_at_ms)) } ", took "
                    b { (units::duration(night.elapsed_ms)) } ", "
                    b { (night.shards.len()) } " shard(s). Tenants: "
                    b { (night.tenants.len() - failed) } " ran, "
                    b.bad[failed > 0] { (failed) } " failed, "
                    b.bad[!night.never_ran.is_empty()] { (night.never_ran.len()) } " never ran, "
                    b { (near) } " within " (format!("{:.0}%", NEAR_LIMIT * 100.0))
                    " of a limit."
                    @if night.interrupted { " The night was interrupted before every tenant ran." }
                }
                (isolation(night))
                (audit(&night.shards))
                h2 { "Tenants" }
                p.facts {
                    "Failures first, then tenants near a limit, then the rest in configuration \
                     order. Meters: each limit's share used; amber past half, red past "
                    (format!("{:.0}%", NEAR_LIMIT * 100.0)) "."
                }
                (tenants::table(&night.tenants, &night.never_ran, &history))
                h2 { "Timeline" }
                (timeline::timeline(night))
                h2 { "Since the previous night" }
                @if history.nights() == 0 {
                    p { "No earlier night is stored under this configuration's runs: trends \
                         start with the next night run with --run-id." }
                } @else {
                    p.facts { "Trends cover " (history.nights() + 1) " nights." }
                    (trends::changes_list(&history.changes(&night.tenants)))
                }
            }
        }
    };
    page.into_string()
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Complete => "complete",
        Verdict::Failed => "failed",
        Verdict::IsolationViolated => "isolation-violated",
        Verdict::Interrupted => "interrupted",
    }
}

fn isolation(night: &NightRecord) -> Markup {
    html! {
        h2 { "Isolation proof" }
        @match &night.isolation {
            None => p.bad #isolation { "Not proven: no probe ran this night (no [isolation] \
                                       section, an interrupted night, or shard 0 left no proof)." },
            Some(i) => {
                @if i.violated {
                    p.bad #isolation { "VIOLATED: a tenant's agent reached another tenant's data." }
                } @else if let Some(e) = &i.error {
                    p.bad #isolation { "Not proven: " (guest(e)) }
                } @else {
                    p.good #isolation { "Proven: every cross-tenant access was blocked." }
                }
                @if !i.checks.is_empty() {
                    table #isolation-checks {
                        tr { th { "decision" } th { "claim" } th { "required" } th { "holds" } }
                        @for c in &i.checks {
                            tr {
                                td { (c.decision.as_deref().unwrap_or("NOT ATTEMPTED")) }
                                td { (guest(&c.claim)) }
                                td.mono { (guest(&c.required)) }
                                @if c.holds { td.good { "✓" } } @else { td.bad { "✗ VIOLATION" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn audit(shards: &[ShardRecord]) -> Markup {
    html! {
        h2 { "Audit chains" }
        table #audit {
            tr { th { "shard" } th { "state" } th { "entries" } th { "head" } th { "chain" } }
            @for s in shards {
                tr {
                    td.n { (s.shard) }
                    @if s.audit_ok { td.good { (guest(&s.state)) } }
                    @else { td.bad { (guest(&s.state)) } }
                    td.n { (units::count(s.audit_entries)) }
                    td.mono { (s.audit_head) }
                    td.mono { (guest(&s.audit)) }
                }
            }
        }
    }
}

/// Writes `page` to `path` whole or not at all (a reader never sees half a page), by a rename
/// from a temporary file beside it.
pub fn write(path: &std::path::Path, page: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path.file_name().map_or_else(
        || std::ffi::OsString::from("page"),
        std::ffi::OsStr::to_os_string,
    );
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(&name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    std::fs::write(&tmp, page)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
