//! The rows of `events_raw`, `calls_partial` and `agent_state_changes`, derived from a checked
//! event exactly as `ccod_fs.sink.rows.RowBuilder.add` does (same values, same order: raw and
//! agent rows in add order, call rows grouped by event type in order of first appearance), with
//! the in-batch dedupe by event id (first occurrence wins, duplicates still counted).

use std::collections::HashSet;

use pyo3::prelude::*;

use super::json::Value;

pub const EVENTS_RAW: [&str; 13] = [
    "tenant_id", "occurred_at", "event_id", "type", "schema_version", "call_id", "agent_id", "queue_id",
    "source_service", "source_node", "source_core_uuid", "source_sequence", "payload",
];
pub const CALL_FIXED: [&str; 7] = ["tenant_id", "call_id", "event_id", "type", "at", "queue_id", "agent_id"];
pub const CALL_FACTS: [&str; 23] = [
    "direction", "caller_number", "destination", "offered_at", "queued_at", "answered_at", "answer_wait_ms",
    "ring_ms", "agent_ended_at", "bridge_ms", "dequeued_at", "outcome", "dequeue_wait_ms", "held", "recorded",
    "ended_at", "hangup_cause", "hangup_by", "duration_ms", "billable_ms", "read_codec", "write_codec", "codec_rate",
];
pub const AGENT_STATE_CHANGES: [&str; 7] = ["tenant_id", "agent_id", "kind", "value", "previous", "changed_at", "event_id"];

/// Fact columns per call event type (rows.py `_FACTS`, checked equal at construction).
pub const FACTS: [(&str, &[&str]); 11] = [
    ("call.offered", &["offered_at", "direction", "caller_number", "destination"]),
    ("call.queued", &["queued_at", "caller_number"]),
    ("call.answered", &["answered_at", "answer_wait_ms", "ring_ms"]),
    ("call.agent_ended", &["agent_ended_at", "bridge_ms"]),
    ("call.dequeued", &["dequeued_at", "outcome", "dequeue_wait_ms"]),
    ("call.hold", &["held"]),
    ("call.recording", &["recorded"]),
    ("call.ended", &["ended_at", "hangup_cause", "hangup_by", "duration_ms", "billable_ms", "read_codec",
                     "write_codec", "codec_rate", "caller_number", "destination", "direction"]),
    ("call.agent_offered", &[]),
    ("call.agent_failed", &[]),
    ("call.transferred", &[]),
];

pub enum Cell {
    Null,
    Int(i128),
    Str(String),
    Obj(Py<PyAny>),
}

pub struct Group {
    pub t: String,
    pub names: &'static [&'static str],
    pub fixed: Vec<Vec<Cell>>,
    pub facts: Vec<Vec<Cell>>,
    pub len: usize,
}

#[derive(Default)]
pub struct Rows {
    pub raw: Vec<Vec<Cell>>,
    pub groups: Vec<Group>,
    pub agents: Vec<Vec<Cell>>,
    pub seen: HashSet<String>,
    pub events: usize,
}

type Obj<'a> = [(std::borrow::Cow<'a, str>, Value<'a>)];

fn get<'x, 'a>(o: &'x Obj<'a>, name: &str) -> &'x Value<'a> {
    static NULL: Value<'static> = Value::Null;
    o.iter().find(|(k, _)| k == name).map(|(_, v)| v).unwrap_or(&NULL)
}

fn obj<'x, 'a>(v: &'x Value<'a>) -> &'x Obj<'a> {
    match v {
        Value::Obj(items) => items,
        _ => &[],
    }
}

fn int(v: &Value<'_>) -> Option<i128> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn text<'x>(v: &'x Value<'_>) -> Option<&'x str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// The value itself (None stays None).
fn cell(v: &Value<'_>) -> Cell {
    match v {
        Value::Str(s) => Cell::Str(s.to_string()),
        Value::Int(i) => Cell::Int(*i),
        Value::Bool(b) => Cell::Int(*b as i128),
        _ => Cell::Null,
    }
}

/// `value or ""` of an optional text.
fn or_empty(v: &Value<'_>) -> Cell {
    Cell::Str(text(v).unwrap_or("").to_string())
}

const U32: i128 = 0xFFFF_FFFF;

fn u32c(v: Option<i128>) -> Option<i128> {
    v.map(|v| v.clamp(0, U32))
}

fn between(end: Option<i128>, start: Option<i128>) -> Option<i128> {
    match (end, start) {
        (Some(e), Some(s)) => u32c(Some(e - s)),
        _ => None,
    }
}

fn opt_int(v: Option<i128>) -> Cell {
    v.map_or(Cell::Null, Cell::Int)
}

fn truthy_int(v: Option<i128>) -> Cell {
    Cell::Int(v.unwrap_or(0))
}

impl Rows {
    pub fn new() -> Self {
        Rows {
            raw: (0..EVENTS_RAW.len()).map(|_| Vec::new()).collect(),
            agents: (0..AGENT_STATE_CHANGES.len()).map(|_| Vec::new()).collect(),
            ..Rows::default()
        }
    }

    /// Counts the event; false when its id was already added in this batch.
    pub fn claim(&mut self, event_id: &str) -> bool {
        self.events += 1;
        if self.seen.contains(event_id) {
            return false;
        }
        self.seen.insert(event_id.to_owned());
        true
    }

    pub fn group(&mut self, t: &str) -> Option<&mut Group> {
        let pos = match self.groups.iter().position(|g| g.t == t) {
            Some(pos) => pos,
            None => {
                let names = FACTS.iter().find(|(name, _)| *name == t)?.1;
                self.groups.push(Group {
                    t: t.to_owned(),
                    names,
                    fixed: (0..CALL_FIXED.len()).map(|_| Vec::new()).collect(),
                    facts: (0..names.len()).map(|_| Vec::new()).collect(),
                    len: 0,
                });
                self.groups.len() - 1
            }
        };
        Some(&mut self.groups[pos])
    }

    /// `RowBuilder.add` for a checked event (the record of the fast path).
    pub fn add(&mut self, ev: &Obj<'_>, payload_json: String) {
        let eid = text(get(ev, "event_id")).unwrap_or("");
        if !self.claim(eid) {
            return;
        }
        let t = text(get(ev, "type")).unwrap_or("");
        let src = obj(get(ev, "source"));
        let tenant = get(ev, "tenant_id");
        let at = int(get(ev, "occurred_at"));
        let call_id = text(get(ev, "call_id")).unwrap_or("");
        let agent_id = get(ev, "agent_id");
        let queue_id = get(ev, "queue_id");
        let raw = [
            cell(tenant),
            opt_int(at),
            Cell::Str(eid.to_owned()),
            Cell::Str(t.to_owned()),
            cell(get(ev, "schema_version")),
            Cell::Str(call_id.to_owned()),
            or_empty(agent_id),
            or_empty(queue_id),
            cell(get(src, "service")),
            or_empty(get(src, "node")),
            or_empty(get(src, "core_uuid")),
            truthy_int(int(get(src, "event_sequence"))),
            Cell::Str(payload_json),
        ];
        for (col, v) in self.raw.iter_mut().zip(raw) {
            col.push(v);
        }
        let p = obj(get(ev, "payload"));
        if !call_id.is_empty() && t.starts_with("call.") {
            let Some(facts) = call_facts(t, ev, p, call_id, at) else { return };
            let fixed = [
                cell(tenant),
                Cell::Str(call_id.to_owned()),
                Cell::Str(eid.to_owned()),
                Cell::Str(t.to_owned()),
                opt_int(at),
                first_text(&[get(p, "queue"), queue_id]),
                first_text(&[get(p, "agent"), agent_id]),
            ];
            let g = self.group(t).expect("a call event type with facts has a group");
            for (col, v) in g.fixed.iter_mut().zip(fixed) {
                col.push(v);
            }
            for (col, v) in g.facts.iter_mut().zip(facts) {
                col.push(v);
            }
            g.len += 1;
        } else if t == "agent.status_changed" || t == "agent.state_changed" {
            let status = t == "agent.status_changed";
            let row = [
                cell(tenant),
                or_empty(agent_id),
                Cell::Str(if status { "status" } else { "state" }.to_owned()),
                cell(get(p, if status { "status" } else { "state" })),
                or_empty(get(p, "previous")),
                opt_int(at),
                Cell::Str(eid.to_owned()),
            ];
            for (col, v) in self.agents.iter_mut().zip(row) {
                col.push(v);
            }
        }
    }
}

/// `a or b or ""` over optional texts.
fn first_text(vs: &[&Value<'_>]) -> Cell {
    for v in vs {
        if let Some(s) = text(v) {
            if !s.is_empty() {
                return Cell::Str(s.to_owned());
            }
        }
    }
    Cell::Str(String::new())
}

/// rows.py's per-type fact functions; None: the event adds no call row.
fn call_facts(t: &str, ev: &Obj<'_>, p: &Obj<'_>, call_id: &str, at: Option<i128>) -> Option<Vec<Cell>> {
    let pi = |name: &str| int(get(p, name));
    let pc = |name: &str| cell(get(p, name));
    Some(match t {
        "call.offered" => vec![opt_int(at), pc("direction"), pc("caller_number"), pc("destination")],
        "call.queued" => {
            let joined = pi("joined_at").filter(|&v| v != 0);
            vec![opt_int(joined.or(at)), pc("caller_number")]
        }
        "call.answered" => {
            let wait = pi("wait_ms").or_else(|| between(pi("answered_at"), pi("joined_at")));
            let ring = pi("ring_ms").or_else(|| between(pi("answered_at"), pi("called_at")));
            vec![opt_int(pi("answered_at")), opt_int(u32c(wait)), opt_int(u32c(ring))]
        }
        "call.agent_ended" => {
            let talk = pi("talk_ms").or_else(|| between(pi("ended_at"), pi("answered_at")));
            vec![opt_int(pi("ended_at")), truthy_int(u32c(talk))]
        }
        "call.dequeued" => {
            let wait = pi("wait_ms").or_else(|| between(pi("left_at"), pi("joined_at")));
            vec![opt_int(pi("left_at")), pc("outcome"), truthy_int(u32c(wait))]
        }
        "call.hold" => vec![Cell::Int(matches!(get(p, "held"), Value::Bool(true)) as i128)],
        "call.recording" => vec![Cell::Int(matches!(get(p, "started"), Value::Bool(true)) as i128)],
        "call.ended" => {
            let _ = ev;
            if text(get(p, "leg_role")) != Some("caller") && text(get(p, "leg_uuid")) != Some(call_id) {
                return None; // an agent or outbound leg: the call goes on
            }
            vec![
                opt_int(pi("ended_at")),
                pc("hangup_cause"),
                pc("hangup_by"),
                opt_int(u32c(pi("duration_ms"))),
                opt_int(u32c(pi("billable_ms"))),
                pc("read_codec"),
                pc("write_codec"),
                opt_int(u32c(pi("codec_rate"))),
                pc("caller_number"),
                pc("destination"),
                pc("direction"),
            ]
        }
        "call.agent_offered" | "call.agent_failed" | "call.transferred" => vec![],
        _ => return None,
    })
}
