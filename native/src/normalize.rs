//! `ccod_fs.ingest.normalize.Normalizer`: dispatch, shared helpers and the channel events.
//! Statements run in the Python reference's order, so state changes made before an error match.

use std::borrow::Cow;

use crate::agent_book::AgentBook;
use crate::call_legs::{CallBook, Leg, AGENT, CALLER, OTHER, OUTBOUND};
use crate::envelope::{span_ms, Builder, Payload};
use crate::headers::{nz, or_int, or_str, Headers, Value, K, R};
use crate::values::{digits, epoch_us, is_tenant_id, small_int, MAX_US, MIN_US};
use crate::{cc_actions, node_events, pyfmt};

const DTMF_DIGITS: &str = "0123456789*#ABCDabcd";
const DTMF_SAMPLES_PER_MS: i64 = 8;

pub struct Core {
    pub node: Option<String>,
    pub system_tenant: String,
    pub book: CallBook,
    pub agents: AgentBook,
    pub last_seen: Option<(Option<String>, String, i64)>,
}

/// What handlers keep of a leg (the Python code holds the Leg object; nothing it reads changes).
pub struct LegView {
    pub uuid: String,
    pub call_id: String,
    pub role: String,
    pub direction: String,
    pub tenant: Option<String>,
    pub agent: Option<String>,
}

impl LegView {
    fn of(leg: &Leg) -> LegView {
        LegView {
            uuid: leg.uuid.clone(),
            call_id: leg.call_id.clone(),
            role: leg.role.clone(),
            direction: leg.direction.clone(),
            tenant: leg.tenant.clone(),
            agent: leg.agent.clone(),
        }
    }
}

/// `NormalizeError("bad-event-name", ...)`: a list (or dict) where a name must be.
fn bad_name<T>() -> R<T> {
    nz("bad-event-name", "Event-Name, Event-Subclass or CC-Action is not a string".to_owned())
}

enum Handler {
    OfferPoint,
    Bridge,
    Hold,
    Dtmf,
    Record,
    HangupComplete,
    BackgroundJob,
    Heartbeat,
    Register,
    Unregister,
    ChannelCustom,
}

fn by_name(name: &str) -> Option<Handler> {
    Some(match name {
        "CHANNEL_CREATE" | "CHANNEL_ANSWER" | "CHANNEL_PARK" => Handler::OfferPoint,
        "CHANNEL_BRIDGE" => Handler::Bridge,
        "CHANNEL_HOLD" | "CHANNEL_UNHOLD" => Handler::Hold,
        "DTMF" => Handler::Dtmf,
        "RECORD_START" | "RECORD_STOP" => Handler::Record,
        "CHANNEL_HANGUP_COMPLETE" => Handler::HangupComplete,
        "BACKGROUND_JOB" => Handler::BackgroundJob,
        "HEARTBEAT" => Handler::Heartbeat,
        _ => return None,
    })
}

fn custom(subclass: &str) -> Option<Handler> {
    Some(match subclass {
        "sofia::register" => Handler::Register,
        "sofia::unregister" | "sofia::expire" => Handler::Unregister,
        "ccod::queue" | "ccod::agent" => Handler::ChannelCustom,
        _ => return None,
    })
}

impl Core {
    pub fn normalize(&mut self, h: &Headers) -> R<Vec<(String, Vec<u8>)>> {
        let handler = if h.eq(K::EventName, "CUSTOM") {
            if h.eq(K::EventSubclass, "callcenter::info") {
                if !h.hashable(K::CcAction) {
                    return bad_name();
                }
                let Some(action) = h.str(K::CcAction).and_then(cc_actions::action) else {
                    return Ok(Vec::new());
                };
                // Run outside the reference's `except TypeError`: the action's errors are its own.
                let mut b = self.builder(h)?;
                cc_actions::run(self, action, h, &mut b)?;
                return Ok(b.out);
            }
            let key = if h.get(K::EventSubclass).is_none() {
                if !h.hashable(K::CcodSubclass) {
                    return bad_name();
                }
                match h.str(K::CcodSubclass) {
                    Some("ccod::queue") | Some("ccod::agent") => {}
                    _ => return Ok(Vec::new()),
                }
                K::CcodSubclass
            } else {
                K::EventSubclass
            };
            if !h.hashable(key) {
                return bad_name();
            }
            h.str(key).and_then(custom)
        } else {
            if !h.hashable(K::EventName) {
                return bad_name();
            }
            h.str(K::EventName).and_then(by_name)
        };
        let Some(handler) = handler else { return Ok(Vec::new()) };
        let mut b = self.builder(h)?;
        match handler {
            Handler::OfferPoint => {
                self.leg(h, &mut b, true)?;
            }
            Handler::Bridge => self.on_bridge(h, &mut b)?,
            Handler::Hold => self.on_hold(h, &mut b)?,
            Handler::Dtmf => self.on_dtmf(h, &mut b)?,
            Handler::Record => self.on_record(h, &mut b)?,
            Handler::HangupComplete => self.on_hangup_complete(h, &mut b)?,
            Handler::BackgroundJob => node_events::background_job(self, h, &mut b)?,
            Handler::Heartbeat => node_events::heartbeat(self, h, &mut b)?,
            Handler::Register => node_events::register(self, h, &mut b, "agent.registered")?,
            Handler::Unregister => node_events::register(self, h, &mut b, "agent.unregistered")?,
            Handler::ChannelCustom => self.on_channel_custom(h, &mut b)?,
        }
        Ok(b.out)
    }

    fn builder(&mut self, h: &Headers) -> R<Builder> {
        let Some(core) = h.str_nonempty(K::CoreUuid) else {
            if h.odd(K::CoreUuid) {
                return h.bad_header(K::CoreUuid);
            }
            return nz("missing-core-uuid", "event without Core-UUID".to_owned());
        };
        let Some(seq) = digits(h.get(K::EventSequence)) else {
            if h.odd(K::EventSequence) {
                return h.bad_header(K::EventSequence);
            }
            return nz("bad-event-sequence", format!("Event-Sequence {}", h.repr_trunc(K::EventSequence, 40)?));
        };
        let ts_us = match digits(h.get(K::EventDateTimestamp)) {
            Some(ts) if (MIN_US..=MAX_US).contains(&ts) => ts,
            _ => {
                if h.odd(K::EventDateTimestamp) {
                    return h.bad_header(K::EventDateTimestamp);
                }
                return nz(
                    "bad-timestamp",
                    format!("Event-Date-Timestamp {}", h.repr_trunc(K::EventDateTimestamp, 40)?),
                )
            }
        };
        let node: Option<String> = match &self.node {
            Some(n) if !n.is_empty() => Some(n.clone()),
            _ => or_str(h.text(K::Switchname)?, || h.text(K::Hostname))?.map(Cow::into_owned),
        };
        self.last_seen = Some((node.clone(), core.to_owned(), ts_us));
        Ok(Builder { node, core_uuid: core.to_owned(), sequence: seq as u64, ts_us, out: Vec::new() })
    }

    /// `tenant_value()`: a tenant id from the switch, checked against the contract's rule.
    pub fn tenant_value_of(&self, h: &Headers, k: K) -> R<String> {
        match h.get(k) {
            Some(Value::Str(s)) if is_tenant_id(s) => Ok(s.to_string()),
            _ => nz("invalid-tenant", format!("tenant id {}", h.repr_trunc(k, 80)?)),
        }
    }

    pub fn tenant_value_str(&self, h: &Headers, value: &str) -> R<String> {
        if is_tenant_id(value) {
            return Ok(value.to_owned());
        }
        nz("invalid-tenant", format!("tenant id {}", pyfmt::repr_trunc(h.py, value, 80)?))
    }

    /// The leg this channel event is about (created on first sight); may emit call.offered.
    pub fn leg(&mut self, h: &Headers, b: &mut Builder, offer: bool) -> R<LegView> {
        let Some(uuid) = h.str_nonempty(K::UniqueId) else {
            if h.odd(K::UniqueId) {
                return h.bad_header(K::UniqueId);
            }
            return nz("missing-unique-id", format!("{} without Unique-ID", h.fmt(K::EventName)?));
        };
        let tenant =
            if h.truthy_checked(K::VarCcodTenant)? { Some(self.tenant_value_of(h, K::VarCcodTenant)?) } else { None };
        if !self.book.legs.contains(uuid) {
            let mut leg = self.new_leg(uuid, h)?;
            leg.created_us = epoch_us(h.get(K::CreatedTime));
            self.book.legs.insert(uuid, leg);
        }
        let leg = self.book.legs.get_mut(uuid).expect("inserted");
        if let Some(tenant) = &tenant {
            if leg.tenant.is_none() {
                leg.tenant = Some(tenant.clone());
            }
            if leg.role == AGENT {
                if let Some(agent) = h.str_nonempty_checked(K::VarCcAgent)? {
                    self.agents.learn_leg(agent, tenant);
                }
            }
        }
        let leg = self.book.legs.get_mut(uuid).expect("inserted");
        if leg.role == CALLER && !leg.offered && h.truthy_checked(K::VarCcodAgent)? {
            leg.direction = "internal".to_owned();
        }
        if offer && !leg.offered && leg.tenant.is_some() && (leg.role == CALLER || leg.role == OUTBOUND) {
            leg.offered = true;
            let view = LegView::of(leg);
            self.book.open_call(&view.call_id, view.tenant.as_deref().expect("tenant"));
            self.offered(h, b, &view)?;
            return Ok(view);
        }
        Ok(LegView::of(leg))
    }

    fn new_leg(&self, uuid: &str, h: &Headers) -> R<Leg> {
        // Only tested or compared, but through the checked reads: an odd JSON type is bad-header.
        let direction = if h.eq_checked(K::CallDirection, "inbound")? { "inbound" } else { "outbound" };
        if let Some(member) = h.str_nonempty_checked(K::VarMemberSession)? {
            if member != uuid {
                let agent = h.text(K::VarCcAgent)?.map(Cow::into_owned);
                return Ok(Leg::new(uuid, member, AGENT, direction, agent));
            }
        }
        if let Some(linked) = h.str_nonempty_checked(K::VarCcodCallId)? {
            if linked != uuid {
                let role = if h.truthy_checked(K::VarCcodAgent)? { AGENT } else { OTHER };
                let agent = h.text(K::VarCcAgent)?.map(Cow::into_owned);
                return Ok(Leg::new(uuid, linked, role, direction, agent));
            }
        }
        if direction == "inbound" {
            return Ok(Leg::new(uuid, uuid, CALLER, direction, None));
        }
        // `checked(originating) or (checked(Other-Leg-Unique-ID) if checked(Other-Type) == "originator" else None)`
        let origin = if h.truthy_checked(K::VarOriginatingLeg)? {
            h.str_nonempty(K::VarOriginatingLeg)
        } else if h.eq_checked(K::OtherType, "originator")? {
            h.str_nonempty_checked(K::OtherLegUniqueId)?
        } else {
            None
        };
        if let Some(origin) = origin {
            let call_id = self.book.legs.get(origin).map(|l| l.call_id.as_str()).unwrap_or(origin);
            return Ok(Leg::new(uuid, call_id, OTHER, direction, None));
        }
        Ok(Leg::new(uuid, uuid, OUTBOUND, direction, None))
    }

    /// The tenant owning the leg's call (the caller's), else the leg's own; none -> dead letter.
    pub fn call_tenant(&self, leg: &LegView) -> R<String> {
        if let Some(call) = self.book.calls.get(&leg.call_id) {
            return Ok(call.tenant.clone());
        }
        if let Some(t) = &leg.tenant {
            return Ok(t.clone());
        }
        nz("tenant-missing", format!("leg {} of call {} has no ccod_tenant", leg.uuid, leg.call_id))
    }

    /// The (call_id, tenant) of a bare mod_callcenter event, through `CC-Member-Session-UUID`.
    pub fn member_call(&self, h: &Headers) -> R<(String, String)> {
        let Some(member) = h.str_nonempty(K::CcMemberSession) else {
            if h.odd(K::CcMemberSession) {
                return h.bad_header(K::CcMemberSession);
            }
            return nz("missing-header", format!("{} without CC-Member-Session-UUID", h.fmt(K::CcAction)?));
        };
        let call = self.book.calls.get(member).or_else(|| {
            let leg = self.book.legs.get(member)?;
            self.book.calls.get(&leg.call_id)
        });
        match call {
            Some(c) => Ok((c.call_id.clone(), c.tenant.clone())),
            None => nz("call-unknown", format!("{} for unknown member session {member}", h.fmt(K::CcAction)?)),
        }
    }

    fn offered(&self, h: &Headers, b: &mut Builder, leg: &LegView) -> R<()> {
        let p = Payload::new()
            .s("direction", &leg.direction)
            .os("caller_number", h.text(K::CallerNumber)?.as_deref())
            .os("caller_name", h.text(K::CallerName)?.as_deref())
            .os("destination", h.text(K::DestinationNumber)?.as_deref())
            .os("entry_point", h.text(K::VarEntryPoint)?.as_deref())
            .os("channel_name", h.text(K::ChannelName)?.as_deref())
            .done();
        b.add("call.offered", p, leg.tenant.as_deref().expect("tenant"), Some(&leg.call_id), None, None);
        Ok(())
    }

    // ---- channel events ---------------------------------------------------------------------

    fn on_channel_custom(&mut self, h: &Headers, b: &mut Builder) -> R<()> {
        if !h.truthy_checked(K::UniqueId)? {
            return Ok(());
        }
        let leg = self.leg(h, b, true)?;
        if h.eq_checked(K::CcodAction, "transfer")? {
            self.transferred(h, &leg, b)?;
        }
        Ok(())
    }

    fn transferred(&self, h: &Headers, leg: &LegView, b: &mut Builder) -> R<()> {
        let Some(target) = h.nonempty(K::TransferTarget)? else {
            return nz("missing-transfer-target", "ccod::queue transfer without ccod_transfer_target".to_owned());
        };
        let kind = if h.truthy_checked(K::TransferKind)? {
            match h.str(K::TransferKind) {
                Some(k @ ("blind" | "attended" | "queue")) => k,
                _ => return nz("bad-transfer-kind", format!("ccod_transfer_kind {}", h.repr_trunc(K::TransferKind, 20)?)),
            }
        } else {
            "blind"
        };
        let p = Payload::new().s("target", &target).s("kind", kind).done();
        let call = self.book.calls.get(&leg.call_id);
        let agent = or_str(h.text(K::VarCcAgent)?, || {
            Ok(or_str(leg.agent.as_deref().map(Cow::Borrowed), || {
                Ok(call.and_then(|c| c.agent.as_deref()).map(Cow::Borrowed))
            })?)
        })?;
        let tenant = self.call_tenant(leg)?;
        let queue = h.text(K::VarCcQueue)?;
        b.add("call.transferred", p, &tenant, Some(&leg.call_id), agent.as_deref(), queue.as_deref());
        Ok(())
    }

    fn on_bridge(&mut self, h: &Headers, b: &mut Builder) -> R<()> {
        let leg = self.leg(h, b, true)?;
        let tenant = self.call_tenant(&leg)?;
        let other: Option<Cow<str>> = match h.nonempty(K::OtherLegUniqueId)? {
            Some(o) => Some(o),
            None => {
                let a = h.text(K::BridgeA)?;
                let bb = h.text(K::BridgeB)?;
                if a.as_deref() == Some(leg.uuid.as_str()) {
                    bb
                } else {
                    a
                }
            }
        };
        let other_leg = match other.as_deref() {
            Some(o) if !o.is_empty() => self.book.legs.get(o),
            _ => None,
        };
        let p = Payload::new()
            .os("other_leg_uuid", other.as_deref())
            .s("leg_role", other_leg.map(|l| l.role.as_str()).unwrap_or(OTHER))
            .done();
        let agent = or_str(h.text(K::VarCcAgent)?, || {
            Ok(other_leg.and_then(|l| l.agent.as_deref()).map(Cow::Borrowed))
        })?;
        let queue = h.text(K::VarCcQueue)?;
        b.add("call.bridged", p, &tenant, Some(&leg.call_id), agent.as_deref(), queue.as_deref());
        Ok(())
    }

    fn on_hold(&mut self, h: &Headers, b: &mut Builder) -> R<()> {
        let leg = self.leg(h, b, false)?;
        let p = Payload::new().b("held", h.eq(K::EventName, "CHANNEL_HOLD")).s("leg_uuid", &leg.uuid).done();
        let tenant = self.call_tenant(&leg)?;
        b.add("call.hold", p, &tenant, Some(&leg.call_id), None, None);
        Ok(())
    }

    fn on_dtmf(&mut self, h: &Headers, b: &mut Builder) -> R<()> {
        let leg = self.leg(h, b, false)?;
        let digit = match h.str(K::DtmfDigit) {
            Some(d) if d.len() == 1 && DTMF_DIGITS.contains(d) => d,
            _ if h.odd(K::DtmfDigit) => return h.bad_header(K::DtmfDigit),
            _ => return nz("bad-dtmf-digit", format!("DTMF-Digit {}", h.repr_trunc(K::DtmfDigit, 20)?)),
        };
        let samples = small_int(h.get(K::DtmfDuration));
        let p = Payload::new()
            .s("digit", digit)
            .oi("duration_ms", samples.map(|s| s.div_euclid(DTMF_SAMPLES_PER_MS)))
            .os("source", h.text(K::DtmfSource)?.as_deref())
            .s("leg_uuid", &leg.uuid)
            .done();
        let tenant = self.call_tenant(&leg)?;
        b.add("call.dtmf", p, &tenant, Some(&leg.call_id), None, None);
        Ok(())
    }

    fn on_record(&mut self, h: &Headers, b: &mut Builder) -> R<()> {
        let leg = self.leg(h, b, false)?;
        let p = Payload::new()
            .b("started", h.eq(K::EventName, "RECORD_START"))
            .os("path", h.text(K::RecordFilePath)?.as_deref())
            .s("leg_uuid", &leg.uuid)
            .done();
        let tenant = self.call_tenant(&leg)?;
        b.add("call.recording", p, &tenant, Some(&leg.call_id), None, None);
        Ok(())
    }

    fn on_hangup_complete(&mut self, h: &Headers, b: &mut Builder) -> R<()> {
        let leg = self.leg(h, b, true)?;
        let tenant = match self.call_tenant(&leg) {
            Ok(t) => t,
            Err(e) => {
                self.book.end_leg(&leg.uuid); // dead-lettered, but the leg is over
                return Err(e);
            }
        };
        let created_us = or_int(epoch_us(h.get(K::CreatedTime)), || epoch_us(h.get(K::VarStartUepoch)));
        let answered_us = epoch_us(h.get(K::AnsweredTime));
        let ended_us = or_int(epoch_us(h.get(K::HangupTime)), || Some(b.ts_us)).expect("ts");
        let cause = or_str(h.text(K::HangupCause)?, || h.text(K::VarHangupCause))?;
        let cause = match cause {
            Some(c) if !c.is_empty() => c,
            _ => Cow::Borrowed("UNKNOWN"),
        };
        let hangup_by = self.hangup_by(h, &leg)?;
        let p = Payload::new()
            .s("leg_uuid", &leg.uuid)
            .s("leg_role", &leg.role)
            .s("direction", &leg.direction)
            .s("hangup_cause", &cause)
            .s("hangup_by", &hangup_by)
            .ot("created_at", created_us)
            .ot("answered_at", answered_us)
            .t("ended_at", ended_us)
            .i("duration_ms", or_int(span_ms(created_us, Some(ended_us)), || Some(0)).expect("int"))
            .i("billable_ms", or_int(span_ms(answered_us, Some(ended_us)), || Some(0)).expect("int"))
            .os("caller_number", h.text(K::CallerNumber)?.as_deref())
            .os("destination", h.text(K::DestinationNumber)?.as_deref())
            .os("read_codec", or_str(h.text(K::ReadCodecName)?, || h.text(K::VarReadCodec))?.as_deref())
            .os("write_codec", or_str(h.text(K::WriteCodecName)?, || h.text(K::VarWriteCodec))?.as_deref())
            .oi("codec_rate", or_int(small_int(h.get(K::ReadCodecRate)), || small_int(h.get(K::VarReadRate))))
            .done();
        let agent = h.text(K::VarCcAgent)?;
        let queue = h.text(K::VarCcQueue)?;
        b.add("call.ended", p, &tenant, Some(&leg.call_id), agent.as_deref(), queue.as_deref());
        self.book.end_leg(&leg.uuid);
        Ok(())
    }

    /// Who ended this leg: its own far end (`recv_*`), else whoever ended the call, else the switch.
    fn hangup_by(&mut self, h: &Headers, leg: &LegView) -> R<String> {
        let disposition = h.str_checked(K::VarHangupDisposition)?;
        let call = self.book.calls.get_mut(&leg.call_id);
        if let Some(d) = disposition.filter(|d| d.starts_with("recv_")) {
            let party = if leg.role == AGENT {
                "agent"
            } else if leg.role == OTHER {
                "unknown"
            } else {
                "caller"
            };
            let ends_call = d == "recv_cancel" || (d == "recv_bye" && !h.eq(K::AnsweredTime, "0"));
            if let Some(call) = call {
                if ends_call && call.hangup_by.is_none() && party != "unknown" {
                    call.hangup_by = Some(party.to_owned());
                }
            }
            return Ok(party.to_owned());
        }
        if let Some(by) = call.and_then(|c| c.hangup_by.clone()) {
            return Ok(by);
        }
        if disposition.is_some_and(|d| d.starts_with("send_")) {
            return Ok("system".to_owned());
        }
        Ok("unknown".to_owned())
    }
}
