//! Headless Chromium (Debian's `chromium`) for the tests that look at a page the way an operator
//! does: the DOM after rendering, a screenshot, and what the browser logged while it rendered.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser: `SLUICE_TEST_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> String {
    std::env::var("SLUICE_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// What Chromium made of a page.
pub struct Rendered {
    /// The document after parsing and layout, serialized (`--dump-dom`).
    pub dom: String,
    /// Chromium's log, console messages (Content-Security-Policy reports) included.
    pub log: String,
}

fn headless(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    // No sandbox: the tests may run as root, where Chromium's own sandbox refuses to start.
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .env_remove("http_proxy")
    .env_remove("https_proxy");
    cmd
}

fn url(page: &Path) -> String {
    format!(
        "file://{}",
        page.canonicalize().expect("the page exists").display()
    )
}

/// Renders `page` and returns its DOM and Chromium's log.
pub fn dump_dom(page: &Path) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let out = headless(profile.path())
        .arg("--dump-dom")
        .arg(url(page))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {}: {e}; install Debian's chromium (cargo xtask test does)",
                chromium()
            )
        });
    assert!(out.status.success(), "chromium failed: {out:?}");
    Rendered {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        log: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Screenshots `page` at `width`×`height` to `png`, returning Chromium's log.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = headless(profile.path())
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(url(page))
        .output()
        .expect("running chromium");
    assert!(out.status.success(), "chromium failed: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A PNG's width and height, from its header.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[1..4], b"PNG", "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Where tests leave files for people to look at: `SLUICE_ARTIFACTS` (CI keeps it), else
/// `target/artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("SLUICE_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target/artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
