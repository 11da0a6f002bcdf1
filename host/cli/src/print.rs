//! Human output in the seed sample's shape.

use sluice_sandbox::{Decision, GateEvent, RunOutcome, Writ};

/// `['a', 'b']`, as the seed prints scope lists.
pub fn scope_list<S: AsRef<str>>(scopes: &[S]) -> String {
    let items: Vec<String> = scopes.iter().map(|s| format!("'{}'", s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// Prints each gate event; a run of identical decisions (a stream of `next-batch` reads) is one
/// line with its count.
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
            e.required
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

/// The figures of a successful run: `{'a': '1', 'b': '2'}`.
pub fn figures(outcome: &RunOutcome) -> String {
    match &outcome.result {
        Ok(summary) => {
            let items: Vec<String> = summary
                .figures
                .iter()
                .map(|f| format!("'{}': '{}'", f.name, f.value))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
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
