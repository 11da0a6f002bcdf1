//! The night as a page (`sluice run --html`, `sluice status --html`), looked at in headless
//! Chromium: the verdict, every tenant's row and cause, budget meters, the timeline, trends over
//! stored nights, and a hostile tenant's markup kept as text that neither runs nor fetches.

mod night;

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use night::{SEED_TENANTS, digest, seed_tenants_toml};
use sluice_tests::chromium::{self, Rendered};
use sluice_tests::{demo_data, root};

/// A loopback server that counts every connection made to it: the hostile tenant's markup
/// points every fetch it can think of here.
struct Beacon {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Beacon {
    fn start() -> Beacon {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut s) = stream {
                    let _ = s.read(&mut [0; 1024]);
                }
            }
        });
        Beacon { url, hits }
    }
}

/// The seed tenants, then `mallory` (fails, its cause and log markup) and `eve` (succeeds, its
/// figures and log markup), with the isolation probe; nights stored under `<dir>/runs`.
fn config(dir: &Path, beacon: &str) -> PathBuf {
    let guests = root().join("target/guests");
    let hostile = guests.join("hostile.wasm");
    let mut text = format!(
        "reports = \"{reports}\"\naudit = \"{audit}\"\nruns = \"{runs}\"\nconcurrency = 2\n\n\
         [isolation]\nprobe = \"{probe}\"\nsha256 = \"{probe_sha}\"\n",
        reports = dir.join("reports").display(),
        audit = dir.join("audit.jsonl").display(),
        runs = dir.join("runs").display(),
        probe = guests.join("probe.wasm").display(),
        probe_sha = digest(&guests.join("probe.wasm")),
    );
    text.push_str(&seed_tenants_toml());
    for (id, attack) in [("mallory", "page_markup_failure"), ("eve", "page_markup")] {
        text.push_str(&format!(
            "\n[[tenants]]\nid = \"{id}\"\nname = \"{id}\"\ndata_type = \"analytics\"\n\
             plugin = \"{plugin}\"\nsha256 = \"{sha}\"\nread_scope = \"read:analytics:{id}\"\n\
             write_scope = \"write:reports:{id}\"\n\
             params = {{ attack = \"{attack}\", beacon = \"{beacon}\" }}\n\n\
             [[tenants.datasets]]\nname = \"visits\"\npath = \"{data}\"\nresource = \"analytics\"\n",
            plugin = hostile.display(),
            sha = digest(&hostile),
            data = demo_data().join("hospital/analytics.db").display(),
        ));
    }
    let path = dir.join("nightly.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs night `run_id` of `config`, its page written to `page`.
fn run_night(config: &Path, run_id: &str, page: &Path) -> Output {
    let out = sluice(&[
        "run",
        config.to_str().unwrap(),
        "--run-id",
        run_id,
        "--html",
        page.to_str().unwrap(),
    ]);
    // Mallory fails by design: the night fails, and the others ran.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The `<tr>` of `tenant` in the tenants table.
fn row<'a>(dom: &'a str, tenant: &str) -> &'a str {
    let table = &dom[dom
        .find("<table id=\"tenants\"")
        .expect("the tenants table")..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .split("<tr")
        .find(|r| r.contains(&format!("<td>{tenant}</td>")))
        .unwrap_or_else(|| panic!("no row for {tenant} in {table}"))
}

/// Tenants in the order the table lists them.
fn listed(dom: &str) -> Vec<String> {
    let table = &dom[dom.find("<table id=\"tenants\"").unwrap()..];
    let table = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    table
        .split("<tr")
        .skip(1)
        .map(|r| {
            // The third cell: `<td>rank</td><td class=..>status</td><td>tenant</td>`.
            let cell = r.split("</td>").nth(2).unwrap();
            cell[cell.rfind('>').unwrap() + 1..].to_string()
        })
        .collect()
}

/// Whether the DOM has an element (not text: text's `<` is serialized as `&lt;`) with an
/// attribute starting `on` (an event handler), or one of the elements that run or fetch.
fn active_markup(dom: &str) -> Vec<String> {
    let mut found = Vec::new();
    for tag in dom.split('<').skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let name = tag
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // Attribute names only: quoted values (Chromium serializes every value quoted) dropped.
        let names: String = tag.split('"').step_by(2).collect::<Vec<_>>().join(" ");
        let attributes: Vec<String> = names
            .split_whitespace()
            .skip(1)
            .map(|a| a.trim_end_matches('=').to_ascii_lowercase())
            .collect();
        if [
            "script", "img", "iframe", "link", "object", "embed", "a", "form", "base",
        ]
        .contains(&name.as_str())
            || attributes
                .iter()
                .any(|a| a.starts_with("on") || a == "style")
        {
            found.push(format!("<{tag}>"));
        }
    }
    found
}

#[test]
fn the_night_page_shows_the_verdict_tenants_budgets_timeline_and_trends_and_keeps_markup_text() {
    let dir = tempfile::tempdir().unwrap();
    // Each night's markup points at its own beacon, so eve's figures change between them.
    let earlier = Beacon::start();
    let config = config(dir.path(), &earlier.url);
    run_night(&config, "night-1", &dir.path().join("night-1.html"));
    let beacon = Beacon::start();
    let config = self::config(dir.path(), &beacon.url);
    let page = dir.path().join("night-2.html");
    let out = run_night(&config, "night-2", &page);
    assert!(
        text(&out.stdout).contains(&format!("Night page: {}", page.display())),
        "{}",
        text(&out.stdout)
    );

    // The page is reproducible from what the night stored: `status --html` draws the same.
    let stored = dir.path().join("status.html");
    let status = sluice(&[
        "status",
        config.to_str().unwrap(),
        "night-2",
        "--html",
        stored.to_str().unwrap(),
    ]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status.stdout));
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap(),
        std::fs::read_to_string(&page).unwrap(),
        "the stored night's page differs from the live one"
    );

    let Rendered { dom, log } = chromium::dump_dom(&page);
    // Kept beside the screenshot: what the assertions below read.
    std::fs::copy(&page, chromium::artifacts_dir().join("night-page.html")).unwrap();
    std::fs::write(chromium::artifacts_dir().join("night-page.dom.html"), &dom).unwrap();
    // The verdict first, with the run id.
    assert!(dom.contains("id=\"verdict\">failed</span>"), "{dom}");
    assert!(dom.contains("<b id=\"run-id\">night-2</b>"), "{dom}");
    // Failures first, then the rest in configuration order.
    assert_eq!(
        listed(&dom),
        ["mallory", "hospital", "bank", "retail", "eve"]
    );
    let mallory = row(&dom, "mallory");
    assert!(mallory.contains("FAILED run"), "{mallory}");
    assert!(
        mallory.contains(&format!(
            "<bdi>transform failed: &lt;script&gt;fetch('{}/script')&lt;/script&gt;",
            beacon.url
        )),
        "mallory's cause, as text: {mallory}"
    );
    for tenant in SEED_TENANTS.into_iter().chain(["eve"]) {
        let row = row(&dom, tenant);
        assert!(row.contains("<td class=\"good\">ok</td>"), "{row}");
        assert!(row.contains("released"), "{row}");
        assert!(row.contains("cached") || row.contains("compiled"), "{row}");
        // Six meters against the tenant's limits, and a trend over the two nights.
        assert_eq!(row.matches("<meter ").count(), 6, "{row}");
        assert!(row.contains("<svg><title>2 nights: "), "{row}");
    }
    assert!(
        row(&dom, "bank").contains("<td>2,400,000</td>"),
        "the bank's rows: {}",
        row(&dom, "bank")
    );
    assert!(
        row(&dom, "bank").contains("title=\"2,400,000\"")
            && dom.contains("title=\"limit 50,000,000 unless a meter says otherwise\""),
        "the bank's rows meter: {}",
        row(&dom, "bank")
    );
    // The isolation proof and the audit chain.
    assert!(
        dom.contains("Proven: every cross-tenant access was blocked."),
        "{dom}"
    );
    assert!(
        dom.contains("hospital agent cannot read bank data"),
        "{dom}"
    );
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/night-2/shard-0.json")).unwrap(),
    )
    .unwrap();
    let head = summary["audit_head"].as_str().unwrap();
    assert!(
        dom.contains(&format!("<td class=\"mono\">{head}</td>")),
        "{dom}"
    );
    // The timeline: one bar per tenant in shard 0's lanes.
    let timeline = &dom[dom
        .find("<svg class=\"lane\" id=\"timeline-0\"")
        .expect("timeline")..];
    let timeline = &timeline[..timeline.find("</svg>").unwrap()];
    assert_eq!(timeline.matches("<rect ").count(), 5, "{timeline}");
    assert_eq!(timeline.matches("class=\"fail\"").count(), 1, "{timeline}");

    // Hostile text stays text: no element or attribute of its own, the bidi override shown as
    // its escape, nothing fetched, nothing refused by the policy (so nothing was attempted).
    assert_eq!(active_markup(&dom), Vec::<String>::new());
    assert_eq!(dom.matches("<h1").count(), 1, "a forged heading: {dom}");
    assert!(!dom.contains("<h1 id=\"forged\""));
    assert_eq!(dom.matches("<style").count(), 1);
    assert!(
        !dom.contains('\u{202e}'),
        "a raw bidi override reached the page"
    );
    assert!(dom.contains("\\u{202e}lanigiro\\u{202c}"), "{dom}");
    // Eve's figures changed since the night before: each listed, old and new, as text.
    let changes = &dom[dom.find("<ul id=\"changes\">").expect("changes listed")..];
    let changes = &changes[..changes.find("</ul>").unwrap()];
    // The four figures that name the beacon; the other three are the same both nights.
    assert_eq!(changes.matches("<li>").count(), 4, "{changes}");
    assert!(
        changes.contains(&format!(
            "<b>eve</b> · &lt;b&gt;figure 0&lt;/b&gt;: \
             &lt;script&gt;fetch('{}/script')&lt;/script&gt; → \
             &lt;script&gt;fetch('{}/script')&lt;/script&gt;",
            earlier.url, beacon.url
        )),
        "{changes}"
    );
    assert!(
        !log.contains("Content Security Policy") && !log.contains("Failed to load"),
        "Chromium refused or tried something: {log}"
    );

    // A screenshot where CI keeps it, at the size an operator's window has.
    let png = chromium::artifacts_dir().join("night-page.png");
    let log = chromium::screenshot(&page, &png, 1280, 900);
    assert!(!log.contains("Content Security Policy"), "{log}");
    assert_eq!(
        chromium::png_size(&std::fs::read(&png).unwrap()),
        (1280, 900)
    );
    assert_eq!(
        beacon.hits.load(Ordering::SeqCst),
        0,
        "the page fetched from the beacon"
    );
    assert_eq!(
        earlier.hits.load(Ordering::SeqCst),
        0,
        "a page fetched from the beacon"
    );
}
