//! `ccod_fs.ingest.cc_actions`: mod_callcenter `CUSTOM callcenter::info` events.

use std::borrow::Cow;

use crate::envelope::{span_ms, Builder, Payload};
use crate::headers::{nz, or_int, or_str, Headers, K, R};
use crate::normalize::Core;
use crate::pyfmt;
use crate::values::{epoch_s_as_us, epoch_us};

#[derive(Clone, Copy)]
pub enum Action {
    MemberQueueStart,
    AgentOffering,
    BridgeAgentFail,
    BridgeAgentStart,
    BridgeAgentEnd,
    MemberQueueEnd,
    AgentStatusChange,
    AgentStateChange,
    AgentContactChange,
}

pub fn action(name: &str) -> Option<Action> {
    Some(match name {
        "member-queue-start" | "member-queue-resume" => Action::MemberQueueStart,
        "agent-offering" => Action::AgentOffering,
        "bridge-agent-fail" => Action::BridgeAgentFail,
        "bridge-agent-start" => Action::BridgeAgentStart,
        "bridge-agent-end" => Action::BridgeAgentEnd,
        "member-queue-end" => Action::MemberQueueEnd,
        "agent-status-change" => Action::AgentStatusChange,
        "agent-state-change" => Action::AgentStateChange,
        "agent-contact-change" => Action::AgentContactChange,
        _ => return None,
    })
}

pub fn run(nz: &mut Core, action: Action, h: &Headers, b: &mut Builder) -> R<()> {
    match action {
        Action::MemberQueueStart => member_queue_start(nz, h, b),
        Action::AgentOffering => agent_offering(nz, h, b),
        Action::BridgeAgentFail => bridge_agent_fail(nz, h, b),
        Action::BridgeAgentStart => bridge_agent_start(nz, h, b),
        Action::BridgeAgentEnd => bridge_agent_end(nz, h, b),
        Action::MemberQueueEnd => member_queue_end(nz, h, b),
        Action::AgentStatusChange => agent_change(nz, h, b, true),
        Action::AgentStateChange => agent_change(nz, h, b, false),
        Action::AgentContactChange => agent_contact_change(nz, h),
    }
}

fn required<'h>(h: &'h Headers, key: K) -> R<Cow<'h, str>> {
    match h.nonempty(key)? {
        Some(v) => Ok(v),
        None => nz("missing-header", format!("{} without {}", h.fmt(K::CcAction)?, crate::headers::NAMES[key as usize])),
    }
}

/// (tenant, call_id, has call) for bridge-agent-* events, which carry the agent leg's channel.
fn agent_leg_call(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<(String, String, bool)> {
    let leg = nz.leg(h, b, false)?;
    // `checked()`: a string picks the member's call, a list is ignored, an odd JSON type is bad-header.
    let by_member = h.str_checked(K::CcMemberSession)?.and_then(|m| nz.book.calls.get(m));
    let call = by_member.or_else(|| nz.book.calls.get(&leg.call_id));
    if let Some(call) = call {
        return Ok((call.tenant.clone(), call.call_id.clone(), true));
    }
    Ok((nz.call_tenant(&leg)?, leg.call_id, false))
}

fn member_queue_start(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let leg = nz.leg(h, b, true)?;
    let tenant = nz.call_tenant(&leg)?;
    let queue = required(h, K::CcQueue)?;
    nz.book.open_call(&leg.call_id, &tenant);
    let call = nz.book.calls.get_mut(&leg.call_id).expect("opened");
    call.joined_us = Some(b.ts_us);
    call.answered_us = None;
    let p = Payload::new()
        .s("queue", &queue)
        .os("member_uuid", h.text(K::CcMemberUuid)?.as_deref())
        .os("caller_number", h.text(K::CcMemberCidNumber)?.as_deref())
        .os("caller_name", h.text(K::CcMemberCidName)?.as_deref())
        .t("joined_at", b.ts_us)
        .b("resumed", h.eq(K::CcAction, "member-queue-resume"))
        .done();
    b.add("call.queued", p, &tenant, Some(&leg.call_id), None, Some(&queue));
    Ok(())
}

fn agent_offering(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let (call_id, tenant) = nz.member_call(h)?;
    let agent = required(h, K::CcAgent)?;
    let queue = required(h, K::CcQueue)?;
    let p = Payload::new()
        .s("queue", &queue)
        .s("agent", &agent)
        .os("member_uuid", h.text(K::CcMemberUuid)?.as_deref())
        .done();
    b.add("call.agent_offered", p, &tenant, Some(&call_id), Some(&agent), Some(&queue));
    Ok(())
}

fn bridge_agent_fail(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let (call_id, tenant) = nz.member_call(h)?;
    let agent = required(h, K::CcAgent)?;
    let queue = required(h, K::CcQueue)?;
    let called_us = epoch_s_as_us(h.get(K::CcAgentCalledTime));
    let aborted_us = epoch_s_as_us(h.get(K::CcAgentAbortedTime));
    let cause = h.nonempty(K::CcHangupCause)?;
    let cause = match cause {
        Some(c) if !c.is_empty() => c,
        _ => Cow::Borrowed("UNKNOWN"),
    };
    let p = Payload::new()
        .s("queue", &queue)
        .s("agent", &agent)
        .s("hangup_cause", &cause)
        .ot("called_at", called_us)
        .ot("aborted_at", aborted_us)
        .oi("ring_ms", span_ms(called_us, aborted_us))
        .done();
    b.add("call.agent_failed", p, &tenant, Some(&call_id), Some(&agent), Some(&queue));
    Ok(())
}

fn bridge_agent_start(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let (tenant, call_id, has_call) = agent_leg_call(nz, h, b)?;
    let agent = required(h, K::CcAgent)?;
    let queue = required(h, K::CcQueue)?;
    let answered_us = or_int(
        or_int(epoch_us(h.get(K::AnsweredTime)), || epoch_s_as_us(h.get(K::CcAgentAnsweredTime))),
        || Some(b.ts_us),
    )
    .expect("ts");
    let called_us = or_int(epoch_us(h.get(K::CreatedTime)), || epoch_s_as_us(h.get(K::CcAgentCalledTime)));
    let call_joined = if has_call { nz.book.calls.get(&call_id).and_then(|c| c.joined_us) } else { None };
    let joined_us = or_int(call_joined, || epoch_s_as_us(h.get(K::CcMemberJoinedTime)));
    if has_call {
        let call = nz.book.calls.get_mut(&call_id).expect("call");
        call.answered_us = Some(answered_us);
        call.agent = Some(agent.to_string());
    }
    let leg_uuid = or_str(h.nonempty(K::CcAgentUuid)?, || h.text(K::UniqueId))?;
    let p = Payload::new()
        .s("queue", &queue)
        .s("agent", &agent)
        .os("agent_leg_uuid", leg_uuid.as_deref())
        .ot("joined_at", joined_us)
        .ot("called_at", called_us)
        .t("answered_at", answered_us)
        .oi("wait_ms", span_ms(joined_us, Some(answered_us)))
        .oi("ring_ms", span_ms(called_us, Some(answered_us)))
        .done();
    b.add("call.answered", p, &tenant, Some(&call_id), Some(&agent), Some(&queue));
    Ok(())
}

fn bridge_agent_end(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let (tenant, call_id, _) = agent_leg_call(nz, h, b)?;
    let agent = required(h, K::CcAgent)?;
    let queue = required(h, K::CcQueue)?;
    let answered_us = or_int(epoch_us(h.get(K::AnsweredTime)), || epoch_s_as_us(h.get(K::CcAgentAnsweredTime)));
    let ended_us = or_int(epoch_us(h.get(K::HangupTime)), || Some(b.ts_us)).expect("ts");
    let cause = or_str(h.nonempty(K::HangupCause)?, || h.nonempty(K::CcHangupCause))?;
    let p = Payload::new()
        .s("queue", &queue)
        .s("agent", &agent)
        .os("hangup_cause", cause.as_deref())
        .ot("answered_at", answered_us)
        .t("ended_at", ended_us)
        .oi("talk_ms", span_ms(answered_us, Some(ended_us)))
        .done();
    b.add("call.agent_ended", p, &tenant, Some(&call_id), Some(&agent), Some(&queue));
    Ok(())
}

fn member_queue_end(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let leg = nz.leg(h, b, true)?;
    let tenant = nz.call_tenant(&leg)?;
    let queue = required(h, K::CcQueue)?;
    let (call_joined, call_answered) = match nz.book.calls.get(&leg.call_id) {
        Some(c) => (c.joined_us, c.answered_us),
        None => (None, None),
    };
    // Only compared, but through the checked reads (one read of CC-Cause, as the Python `cause = checked(...)`).
    let cause = h.str_checked(K::CcCause)?;
    let cancel = cause == Some("Cancel");
    let reason = if cancel { h.text(K::CcCancelReason)? } else { None };
    let outcome = if cause == Some("Terminated") {
        "answered"
    } else if cancel {
        let o = match reason.as_deref().unwrap_or("") {
            "BREAK_OUT" => "abandoned",
            "TIMEOUT" => "timeout",
            "NO_AGENT_TIMEOUT" => "no_agent_timeout",
            "EXIT_WITH_KEY" => "exit_with_key",
            _ => "other",
        };
        if o == "abandoned" && !(h.truthy_checked(K::HangupCause)? || h.eq_checked(K::AnswerState, "hangup")?) {
            "other"
        } else {
            o
        }
    } else {
        "other"
    };
    let joined_us = or_int(call_joined, || epoch_s_as_us(h.get(K::CcMemberJoinedTime)));
    let left_us = b.ts_us;
    let wait_ms = if outcome == "answered" {
        let answered_us = or_int(call_answered, || epoch_s_as_us(h.get(K::CcAgentAnsweredTime)));
        span_ms(joined_us, answered_us)
    } else {
        span_ms(joined_us, Some(left_us))
    };
    let agent = h.nonempty(K::CcAgent)?;
    let p = Payload::new()
        .s("queue", &queue)
        .s("outcome", outcome)
        .os("cancel_reason", reason.as_deref())
        .ot("joined_at", joined_us)
        .t("left_at", b.ts_us)
        .oi("wait_ms", wait_ms)
        .os("agent", agent.as_deref())
        .done();
    b.add("call.dequeued", p, &tenant, Some(&leg.call_id), agent.as_deref(), Some(&queue));
    Ok(())
}

fn agent_change(nz: &mut Core, h: &Headers, b: &mut Builder, status: bool) -> R<()> {
    let agent = required(h, K::CcAgent)?;
    let value = required(h, if status { K::CcAgentStatus } else { K::CcAgentState })?;
    let book = if status { &mut nz.agents.status } else { &mut nz.agents.state };
    let previous = book.get(&agent).cloned();
    book.insert(&agent, value.to_string());
    let Some(tenant) = nz.agents.tenant_of(&agent) else {
        let shown = pyfmt::repr_trunc(h.py, &agent, 80)?;
        return nz_err(format!("no tenant known for agent {shown}"));
    };
    let (event_type, field) = if status { ("agent.status_changed", "status") } else { ("agent.state_changed", "state") };
    let p = Payload::new().s(field, &value).os("previous", previous.as_deref()).done();
    b.add(event_type, p, &tenant, None, Some(&agent), None);
    Ok(())
}

fn nz_err(detail: String) -> R<()> {
    nz("agent-tenant-unresolved", detail)
}

fn agent_contact_change(nz: &mut Core, h: &Headers) -> R<()> {
    let agent = h.nonempty(K::CcAgent)?;
    let contact = h.nonempty(K::CcAgentContact)?;
    if let (Some(agent), Some(contact)) = (agent, contact) {
        if !agent.is_empty() && !contact.is_empty() {
            nz.agents.learn_contact(&agent, &contact);
        }
    }
    Ok(())
}
