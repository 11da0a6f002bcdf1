//! The night in time: one SVG per shard, a lane per slot, each tenant a bar from its start to
//! its end. Slots are recovered from the times alone (a tenant takes the first lane free when it
//! started), so a stored night draws the same as a live one.

use maud::{Markup, html};
use sluice_pipeline::record::{NightRecord, TenantRecord};

use crate::order::{Standing, standing};
use crate::units;

/// Drawing width, and where the bars begin (after the lane labels).
const WIDTH: f64 = 1200.0;
const LEFT: f64 = 64.0;
const LANE: u32 = 12;
/// Lanes drawn per shard; more concurrent tenants than this share the last lane.
const MAX_LANES: usize = 64;

pub fn timeline(night: &NightRecord) -> Markup {
    let timed: Vec<&TenantRecord> = night
        .tenants
        .iter()
        .filter(|t| t.started_at_ms > 0)
        .collect();
    let Some(start) = timed.iter().map(|t| t.started_at_ms).min() else {
        return html! { p { "No tenant's start was recorded." } };
    };
    let end = timed
        .iter()
        .map(|t| t.started_at_ms + t.elapsed_ms)
        .max()
        .unwrap_or(start);
    let span = (end - start).max(1) as f64;
    let x = |ms: u64| LEFT + (ms - start) as f64 / span * (WIDTH - LEFT - 8.0);
    html! {
        p.facts {
            "From " (units::utc(start)) " to " (units::utc(end)) " ("
            (units::duration(end - start)) "); green ran, red failed, amber came near a limit."
        }
        @for shard in &night.shards {
            @let lanes = lanes(timed.iter().copied().filter(|t| t.shard == shard.shard));
            @let height = lanes.len() as u32 * LANE + 4;
            svg.lane id={"timeline-" (shard.shard)} viewBox={"0 0 1200 " (height)}
                width="1200" height=(height) {
                title { "shard " (shard.shard) }
                @for (i, lane) in lanes.iter().enumerate() {
                    @let y = i as u32 * LANE + 2;
                    text x="2" y=(y + 9) { "shard " (shard.shard) "·" (i) }
                    @for t in lane {
                        // Whole pixels, the height in the stylesheet: a night of a thousand
                        // tenants draws a thousand bars.
                        @let (left, width) = (x(t.started_at_ms), (t.elapsed_ms as f64 / span
                            * (WIDTH - LEFT - 8.0)).max(1.0));
                        @let id = sluice_text::escape(&t.id);
                        rect class=(class_of(t)) x=(format!("{left:.0}")) y=(y)
                            width=(format!("{width:.0}")) {
                            title { (id) " " (units::duration(t.elapsed_ms)) }
                        }
                        // A bar wide enough for its name carries it (a small night reads at a
                        // glance); the others are named on hover.
                        @if width >= 6.0 * id.chars().count() as f64 + 8.0 {
                            text.on x=(format!("{:.0}", left + 3.0)) y=(y + 9) { (id) }
                        }
                    }
                }
            }
        }
    }
}

fn class_of(t: &TenantRecord) -> &'static str {
    match standing(t) {
        Standing::Failed => "fail",
        Standing::NearLimit => "near",
        Standing::Fine => "ok",
    }
}

/// Tenants packed into lanes: each takes the first lane whose last tenant ended by its start.
fn lanes<'a>(tenants: impl Iterator<Item = &'a TenantRecord>) -> Vec<Vec<&'a TenantRecord>> {
    let mut sorted: Vec<&TenantRecord> = tenants.collect();
    sorted.sort_by_key(|t| t.started_at_ms);
    let mut lanes: Vec<Vec<&TenantRecord>> = Vec::new();
    for t in sorted {
        let free = lanes.iter().position(|lane| {
            lane.last()
                .is_some_and(|last| last.started_at_ms + last.elapsed_ms <= t.started_at_ms)
        });
        match free {
            Some(i) => lanes[i].push(t),
            None if lanes.len() < MAX_LANES => lanes.push(vec![t]),
            None => lanes[MAX_LANES - 1].push(t),
        }
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(id: &str, start: u64, elapsed: u64) -> TenantRecord {
        let mut t: TenantRecord = serde_json::from_value(serde_json::json!({
            "id": id, "shard": 0, "error": null, "agent_id": null, "agent_end": null,
            "language": null, "digest": null, "origin": null, "started_at_ms": start,
            "elapsed_ms": elapsed, "rows_read": 0, "bytes_read": 0, "allowed": 0, "denied": 0,
            "budget": null, "figures": []
        }))
        .unwrap();
        t.id = id.into();
        t
    }

    #[test]
    fn a_tenant_takes_the_first_lane_free_when_it_starts() {
        let ts = [
            at("a", 0, 10),
            at("b", 1, 5),
            at("c", 6, 10),
            at("d", 10, 1),
        ];
        let lanes = lanes(ts.iter());
        let ids: Vec<Vec<&str>> = lanes
            .iter()
            .map(|l| l.iter().map(|t| t.id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec!["a", "d"], vec!["b", "c"]]);
    }
}
