//! The page's one stylesheet, and the Content-Security-Policy that admits it and nothing else.
//!
//! The policy names the stylesheet by its hash, so no other style (an attribute, a second
//! `<style>`) applies, and forbids scripts, images, fonts, frames, forms and connections: even
//! markup that escaped the templates could neither run nor fetch.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub const CSS: &str = "\
:root{color-scheme:light;font:14px/1.4 system-ui,sans-serif;color:#1b1f24;background:#fff}\
body{margin:16px 24px}\
h1{font-size:22px;margin:0 0 4px}\
h2{font-size:16px;margin:20px 0 6px}\
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:600}\
.complete{background:#1a7f37}.failed{background:#cf222e}\
.isolation-violated{background:#82071e}.interrupted{background:#9a6700}\
.facts{color:#57606a;margin:6px 0}.facts b{color:#1b1f24}\
table{border-collapse:collapse;font-size:12px}\
th,td{padding:2px 4px;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}\
th{background:#f6f8fa;position:sticky;top:0}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
td.n,td.mono,th{white-space:nowrap}\
#tenants td:nth-child(1),#tenants td:nth-child(n+8):nth-child(-n+11)\
{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
#tenants td:nth-child(6){font-family:ui-monospace,monospace;font-size:11px;white-space:nowrap}\
#tenants td:nth-child(18){white-space:nowrap}\
#tenants td:nth-child(4){max-width:280px;overflow-wrap:anywhere}\
#tenants td:nth-child(4):not(:empty){min-width:170px}#tenants td:nth-child(2){white-space:nowrap}\
tr.fail td{background:#ffebe9}tr.near td{background:#fff8c5}\
.bad{color:#cf222e;font-weight:600}.good{color:#1a7f37;font-weight:600}\
.mono{font-family:ui-monospace,monospace;font-size:11px}\
meter{width:30px;height:10px}\
svg.lane{display:block;margin:2px 0}svg.lane rect{height:10px}svg.lane text.on{fill:#fff}\
svg .ok{fill:#4c9a5f}svg .fail{fill:#cf222e}svg .near{fill:#d4a72c}\
svg text{font:10px system-ui,sans-serif;fill:#57606a}\
#tenants svg{width:60px;height:16px}\
#tenants path{fill:none;stroke-width:1.2;stroke:#0969da}\
#tenants path+path{stroke:#8250df}\
.slower{color:#9a6700;font-weight:600}\
details summary{cursor:pointer;color:#57606a}\
ul{margin:4px 0;padding-left:20px}\
";

/// The policy for a page whose only style is [`CSS`].
pub fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; script-src 'none'; img-src 'none'; \
         base-uri 'none'; form-action 'none'"
    )
}
