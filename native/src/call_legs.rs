//! `ccod_fs.ingest.call_legs`: legs -> calls -> tenants, ended legs retained then evicted oldest first.

use std::collections::VecDeque;

use crate::ordmap::OrdMap;

pub const CALLER: &str = "caller";
pub const AGENT: &str = "agent";
pub const OUTBOUND: &str = "outbound";
pub const OTHER: &str = "other";

#[derive(Clone, Debug)]
pub struct Leg {
    pub uuid: String,
    pub call_id: String,
    pub role: String,
    pub direction: String,
    pub tenant: Option<String>,
    pub offered: bool,
    pub agent: Option<String>,
    pub created_us: Option<i64>,
    pub ended: bool,
}

impl Leg {
    pub fn new(uuid: &str, call_id: &str, role: &str, direction: &str, agent: Option<String>) -> Leg {
        Leg {
            uuid: uuid.to_owned(),
            call_id: call_id.to_owned(),
            role: role.to_owned(),
            direction: direction.to_owned(),
            tenant: None,
            offered: false,
            agent,
            created_us: None,
            ended: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Call {
    pub call_id: String,
    pub tenant: String,
    pub joined_us: Option<i64>,
    pub answered_us: Option<i64>,
    pub hangup_by: Option<String>,
    pub agent: Option<String>,
}

pub struct CallBook {
    pub legs: OrdMap<Leg>,
    pub calls: OrdMap<Call>,
    pub retention: usize,
    pub ended: VecDeque<String>,
}

impl CallBook {
    pub fn new(retention: usize) -> CallBook {
        CallBook { legs: OrdMap::default(), calls: OrdMap::default(), retention, ended: VecDeque::new() }
    }

    pub fn open_call(&mut self, call_id: &str, tenant: &str) {
        if !self.calls.contains(call_id) {
            self.calls.insert(
                call_id,
                Call {
                    call_id: call_id.to_owned(),
                    tenant: tenant.to_owned(),
                    joined_us: None,
                    answered_us: None,
                    hangup_by: None,
                    agent: None,
                },
            );
        }
    }

    /// A leg hung up; the oldest ended legs beyond `retention` are forgotten (with the call they own).
    pub fn end_leg(&mut self, uuid: &str) {
        let Some(leg) = self.legs.get_mut(uuid) else { return };
        if leg.ended {
            return;
        }
        leg.ended = true;
        self.ended.push_back(uuid.to_owned());
        while self.ended.len() > self.retention {
            let old = self.ended.pop_front().expect("non-empty");
            if let Some(gone) = self.legs.remove(&old) {
                if gone.call_id == gone.uuid {
                    self.calls.remove(&gone.call_id);
                }
            }
        }
    }
}
