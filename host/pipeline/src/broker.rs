//! The broker a night's agents come from: an app connected to it, described for the operator.
//! Which broker that is (a real one, or the embedded dev broker) is the caller's choice: the
//! pipeline only needs the app.

use agentwrit::AgentWritApp;

/// A connected app and how to describe its broker.
pub struct Broker {
    app: AgentWritApp,
    description: String,
    embedded: bool,
}

impl Broker {
    /// A broker the operator runs, e.g. from `AGENTWRIT_BROKER_URL`.
    pub fn external(app: AgentWritApp) -> Broker {
        Broker::described(app, None)
    }

    /// `app` with a description of the broker, e.g. "(from AGENTWRIT_* variables)".
    pub fn described(app: AgentWritApp, note: Option<&str>) -> Broker {
        let note = note.map(|n| format!(" {n}")).unwrap_or_default();
        Broker {
            description: format!("AgentWrit broker at {}{note}", app.broker_url()),
            app,
            embedded: false,
        }
    }

    /// An embedded dev broker the caller started (and keeps alive for the night).
    pub fn embedded(app: AgentWritApp) -> Broker {
        Broker {
            description: format!("embedded AgentWrit dev broker at {}", app.broker_url()),
            app,
            embedded: true,
        }
    }

    /// The connected app.
    pub fn app(&self) -> &AgentWritApp {
        &self.app
    }

    /// The broker, described for the operator.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the app's ceiling is Sluice's own configuration (`[broker] ceiling`) rather than
    /// the operator's: it decides what an error tells the user to change.
    pub fn is_embedded(&self) -> bool {
        self.embedded
    }
}
