//! `sluice:etl/identity`: who the run is. Needs no scope.

use crate::bindings::sluice::etl::identity::{self, Agent};
use crate::state::HostState;

impl identity::Host for HostState {
    fn whoami(&mut self) -> wasmtime::Result<Agent> {
        self.enter()?;
        let writ = self.gate.writ();
        Ok(Agent {
            agent_id: writ.agent_id.clone(),
            tenant: writ.tenant.clone(),
            task_id: writ.task_id.clone(),
            scopes: writ.held_strings(),
        })
    }
}
