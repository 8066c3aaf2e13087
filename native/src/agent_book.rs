//! `ccod_fs.ingest.agent_book`: which tenant an agent belongs to, and its last status/state.

use std::collections::HashMap;

use crate::ordmap::OrdMap;
use crate::values::{dial_vars, is_tenant_id, var};

#[derive(Default)]
pub struct AgentBook {
    pub agent_tenants: HashMap<String, String>,
    pub domain_tenants: HashMap<String, String>,
    pub domain_is_tenant: bool,
    pub contact_tenants: OrdMap<String>,
    pub leg_tenants: OrdMap<String>,
    pub status: OrdMap<String>,
    pub state: OrdMap<String>,
}

fn truthy(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str).filter(|s| !s.is_empty())
}

impl AgentBook {
    pub fn learn_leg(&mut self, agent: &str, tenant: &str) {
        self.leg_tenants.insert(agent, tenant.to_owned());
    }

    pub fn learn_contact(&mut self, agent: &str, contact: &str) {
        let vars = dial_vars(contact);
        if let Some(tenant) = var(&vars, "ccod_tenant") {
            if !tenant.is_empty() && is_tenant_id(tenant) {
                self.contact_tenants.insert(agent, tenant.to_owned());
            }
        }
    }

    pub fn tenant_of(&self, agent: &str) -> Option<String> {
        if let Some(t) = truthy(self.contact_tenants.get(agent))
            .or_else(|| truthy(self.agent_tenants.get(agent)))
            .or_else(|| truthy(self.leg_tenants.get(agent)))
        {
            return Some(t.to_owned());
        }
        let (_, domain) = agent.rsplit_once('@')?;
        if let Some(t) = truthy(self.domain_tenants.get(domain)) {
            return Some(t.to_owned());
        }
        if self.domain_is_tenant && is_tenant_id(domain) {
            return Some(domain.to_owned());
        }
        None
    }
}
