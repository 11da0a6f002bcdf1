//! Human output in the seed sample's shape. Every string that did not come from this binary is
//! shown through [`safe`], so a guest (or a tampered audit file) cannot draw a line of it.

use std::borrow::Cow;

use sluice_sandbox::{Decision, Figure, GateEvent, RunOutcome, Writ, escape};

/// `text` with control characters escaped: for anything read from a guest, a broker, a config or
/// an audit file.
pub fn safe(text: &str) -> Cow<'_, str> {
    escape(text)
}

/// Whether whoever reads standard output has gone (`sluice audit show ... | head`): then the
/// command stops quietly, as Unix tools do, instead of `println!`'s panic; other write errors are
/// errors.
pub fn reader_gone(written: std::io::Result<()>) -> anyhow::Result<bool> {
    match written {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(anyhow::anyhow!("writing to standard output: {e}")),
    }
}

/// `['a', 'b']`, as the seed prints scope lists.
pub fn scope_list<S: AsRef<str>>(scopes: &[S]) -> String {
    let items: Vec<String> = scopes
        .iter()
        .map(|s| format!("'{}'", safe(s.as_ref())))
        .collect();
    format!("[{}]", items.join(", "))
}

/// Prints each kind of gate decision with its count.
pub fn gate_events(writ: &Writ, events: &[GateEvent], indent: &str) {
    let held = scope_list(&writ.held_strings());
    for e in events {
        let times = if e.count > 1 {
            format!(" ×{}", e.count)
        } else {
            String::new()
        };
        println!(
            "{indent}[{}] {}{times} on {}",
            e.decision.as_str(),
            e.call.name(),
            safe(e.required.as_str())
        );
        if e.decision != Decision::Allowed {
            println!(
                "{indent}          Required: {}",
                scope_list(&[e.required.as_str()])
            );
            println!("{indent}          Held:     {held}");
        }
    }
}

/// `{'a': '1', 'b': '2'}`, the guest's text escaped.
pub fn figure_map(figures: &[Figure]) -> String {
    let items: Vec<String> = figures
        .iter()
        .map(|f| format!("'{}': '{}'", f.name, f.value))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// The figures of a successful run.
pub fn figures(outcome: &RunOutcome) -> String {
    match &outcome.result {
        Ok(summary) => figure_map(&summary.figures),
        Err(_) => String::new(),
    }
}

/// The run's log lines and a note of what the cap dropped.
pub fn logs(outcome: &RunOutcome, indent: &str) {
    for line in &outcome.logs {
        println!(
            "{indent}[{} {}] {}",
            line.source,
            line.level.as_str(),
            line.message
        );
    }
    if outcome.log_bytes_dropped > 0 {
        println!(
            "{indent}[log] {} bytes of log output dropped (cap reached)",
            outcome.log_bytes_dropped
        );
    }
}

/// `12847` → `12,847`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `[PLUGIN] python, compiled in 6.6 s` or `... loaded compiled from the cache in 9 ms`.
pub fn plugin_load(p: &sluice_pipeline::outcome::PluginLoad, indent: &str) {
    let how = match p.origin {
        "cached" => "compiled code from the cache",
        "recompiled" => "recompiled",
        _ => "compiled",
    };
    println!(
        "{indent}[PLUGIN]  {}, {how} in {} ms",
        p.language, p.load_ms
    );
    if let Some(note) = &p.cache_note {
        println!("{indent}          {}", safe(note));
    }
    // A registry plugin: what ran, and who vouched for it.
    if let (Some(reference), Some(digest)) = (&p.reference, &p.digest)
        && reference.starts_with("oci://")
    {
        println!("{indent}          {} @ {digest}", safe(reference));
        match &p.signer {
            Some(signer) => println!("{indent}          signed by key {signer}"),
            None => println!("{indent}          unsigned (the tenant names no signer)"),
        }
    }
}
