//! The rows of `events_raw`, `calls_partial` and `agent_state_changes`, derived from a checked
//! event exactly as `ccod_fs.sink.rows.RowBuilder.add` does (same values, same order: raw and
//! agent rows in add order, call rows grouped by event type in order of first appearance), with
//! the in-batch dedupe by event id (first occurrence wins, duplicates still counted).

use pyo3::prelude::*;

use super::fxhash::FxHashSet;
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

/// One value of a row; texts live in the batch's `Rows::text` arena (no allocation per cell).
pub enum Cell {
    Null,
    Int(i64),
    UInt(u64),
    Str(usize, usize),
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
    pub text: String,
    seen_uuids: FxHashSet<u128>,
    seen_other: FxHashSet<String>,
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

fn int_cell(i: i128) -> Cell {
    match i64::try_from(i) {
        Ok(v) => Cell::Int(v),
        Err(_) => Cell::UInt(u64::try_from(i).unwrap_or(u64::MAX)), // the reader keeps ints within u64
    }
}

fn opt_int(v: Option<i128>) -> Cell {
    v.map_or(Cell::Null, int_cell)
}

/// `value or 0`.
fn truthy_int(v: Option<i128>) -> Cell {
    int_cell(v.unwrap_or(0))
}

/// The 128 bits of a canonical (lowercase) UUID text.
fn uuid_bits(s: &str) -> Option<u128> {
    if !super::timefmt::is_uuid(s) {
        return None;
    }
    let mut v = 0u128;
    for c in s.bytes().filter(|&c| c != b'-') {
        v = (v << 4) | (c as char).to_digit(16)? as u128;
    }
    Some(v)
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
        match uuid_bits(event_id) {
            Some(bits) => self.seen_uuids.insert(bits),
            None => {
                if self.seen_other.contains(event_id) {
                    return false;
                }
                self.seen_other.insert(event_id.to_owned())
            }
        }
    }

    /// A text cell (copied into the arena).
    pub fn s(&mut self, text: &str) -> Cell {
        let start = self.text.len();
        self.text.push_str(text);
        Cell::Str(start, text.len())
    }

    /// The value itself (None stays None).
    fn cell(&mut self, v: &Value<'_>) -> Cell {
        match v {
            Value::Str(s) => self.s(s),
            Value::Int(i) => int_cell(*i),
            Value::Bool(b) => Cell::Int(*b as i64),
            _ => Cell::Null,
        }
    }

    /// `value or ""` of an optional text.
    fn or_empty(&mut self, v: &Value<'_>) -> Cell {
        self.s(text(v).unwrap_or(""))
    }

    /// `a or b or ""` over optional texts.
    fn first_text(&mut self, vs: &[&Value<'_>]) -> Cell {
        let found = vs.iter().filter_map(|v| text(v)).find(|s| !s.is_empty()).unwrap_or("");
        self.s(found)
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
    pub fn add(&mut self, ev: &Obj<'_>, payload_json: Cell) {
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
            self.cell(tenant),
            opt_int(at),
            self.s(eid),
            self.s(t),
            self.cell(get(ev, "schema_version")),
            self.s(call_id),
            self.or_empty(agent_id),
            self.or_empty(queue_id),
            self.cell(get(src, "service")),
            self.or_empty(get(src, "node")),
            self.or_empty(get(src, "core_uuid")),
            truthy_int(int(get(src, "event_sequence"))),
            payload_json,
        ];
        for (col, v) in self.raw.iter_mut().zip(raw) {
            col.push(v);
        }
        let p = obj(get(ev, "payload"));
        if !call_id.is_empty() && t.starts_with("call.") {
            let Some(facts) = self.call_facts(t, p, call_id, at) else { return };
            let fixed = [
                self.cell(tenant),
                self.s(call_id),
                self.s(eid),
                self.s(t),
                opt_int(at),
                self.first_text(&[get(p, "queue"), queue_id]),
                self.first_text(&[get(p, "agent"), agent_id]),
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
                self.cell(tenant),
                self.or_empty(agent_id),
                self.s(if status { "status" } else { "state" }),
                self.cell(get(p, if status { "status" } else { "state" })),
                self.or_empty(get(p, "previous")),
                opt_int(at),
                self.s(eid),
            ];
            for (col, v) in self.agents.iter_mut().zip(row) {
                col.push(v);
            }
        }
    }
}

impl Rows {
/// rows.py's per-type fact functions; None: the event adds no call row.
fn call_facts(&mut self, t: &str, p: &Obj<'_>, call_id: &str, at: Option<i128>) -> Option<Vec<Cell>> {
    let pi = |name: &str| int(get(p, name));
    let mut pc = |name: &str| self.cell(get(p, name));
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
        "call.hold" => vec![Cell::Int(matches!(get(p, "held"), Value::Bool(true)) as i64)],
        "call.recording" => vec![Cell::Int(matches!(get(p, "started"), Value::Bool(true)) as i64)],
        "call.ended" => {
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
}
