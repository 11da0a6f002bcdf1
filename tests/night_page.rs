//! The night page at scale: 1,000 tenants with 13 earlier nights fit in one page under 1 MB,
//! failures first, then the tenants nearest a limit, and Chromium draws every row.

use sluice_tests::big_night::{FAIL_EVERY, NEAR_EVERY, big_night, tenant_id};
use sluice_tests::chromium;

const TENANTS: usize = 1_000;

/// The tenants table's rows as (class, tenant id), in page order.
fn rows(page: &str) -> Vec<(String, String)> {
    let body = &page[page
        .find("<table id=\"tenants\">")
        .expect("a tenants table")..];
    let body = &body[body.find("<tbody>").unwrap()..body.find("</tbody>").unwrap()];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            let class = row
                .strip_prefix(" class=\"")
                .map_or("", |rest| &rest[..rest.find('"').unwrap()]);
            let id_at = row.find("tenant-").expect("a tenant id in every row");
            (
                class.to_string(),
                row[id_at..id_at + "tenant-0000".len()].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_thousand_tenants_fit_in_one_page_with_failures_and_near_limits_first() {
    let (night, past) = big_night(TENANTS, 13);
    let page = sluice_page::render(&night, &past);
    assert!(
        page.len() < 1_000_000,
        "a 1,000-tenant page is {} bytes",
        page.len()
    );

    let failed: Vec<String> = (0..TENANTS)
        .filter(|i| i % FAIL_EVERY == 7)
        .map(tenant_id)
        .collect();
    let near: Vec<String> = (0..TENANTS)
        .filter(|i| i % FAIL_EVERY != 7 && i % NEAR_EVERY == 3)
        .map(tenant_id)
        .collect();
    let rows = rows(&page);
    assert_eq!(rows.len(), TENANTS, "one row per tenant");
    let (top, rest) = rows.split_at(failed.len());
    assert!(top.iter().all(|(class, _)| class == "fail"), "{top:?}");
    assert_eq!(
        top.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        failed
    );
    let (next, rest) = rest.split_at(near.len());
    assert!(next.iter().all(|(class, _)| class == "near"), "{next:?}");
    assert_eq!(
        next.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        near
    );
    assert!(rest.iter().all(|(class, _)| class.is_empty()));

    // Every failure's cause is cut to a line, its markup text; its trend is drawn.
    assert!(!page.contains("<b>its own words</b>"));
    assert!(page.contains("&lt;b&gt;its own words&lt;/b&gt;"));
    assert_eq!(page.matches("<svg><title>14 nights: ").count(), TENANTS);
    // Tonight's slow tenants are called so, against their own 13 nights.
    let slow = (0..TENANTS).filter(|i| i % 97 == 5).count();
    assert_eq!(page.matches("usually ").count(), slow);
    // The figure changes are listed up to their cap, the rest counted.
    let changes = &page[page.find("<ul id=\"changes\">").expect("a list of changes")..];
    let changes = &changes[..changes.find("</ul>").unwrap()];
    assert_eq!(changes.matches("<li>").count(), 200);

    // A browser draws all of it: every row is in the DOM after rendering.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("night.html");
    sluice_page::write(&file, &page).unwrap();
    let rendered = chromium::dump_dom(&file);
    assert_eq!(
        rendered.dom.matches("<tr class=\"fail\"").count(),
        failed.len()
    );
    assert_eq!(rendered.dom.matches("<meter ").count(), TENANTS * 6);
    assert!(
        !rendered.log.contains("Content Security Policy"),
        "{}",
        rendered.log
    );
}
