//! Human output in the seed sample's shape.

use sluice_sandbox::{Decision, GateEvent, RunOutcome, Writ};

/// `['a', 'b']`, as the seed prints scope lists.
pub fn scope_list<S: AsRef<str>>(scopes: &[S]) -> String {
    let items: Vec<String> = scopes.iter().map(|s| format!("'{}'", s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// Prints each gate decision; consecutive identical ones (a stream of `next-batch` reads)
/// collapse into one line with a count.
pub fn gate_events(writ: &Writ, events: &[GateEvent], indent: &str) {
    let held = scope_list(&writ.held_strings());
    let mut i = 0;
    while i < events.len() {
        let e = &events[i];
        let run = events[i..]
            .iter()
            .take_while(|o| {
                o.call == e.call && o.required == e.required && o.decision == e.decision
            })
            .count();
        let times = if run > 1 {
            format!(" ×{run}")
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
        i += run;
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
