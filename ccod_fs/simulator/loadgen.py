"""Contact-center load as a deterministic discrete-event simulation over virtual time.

Callers arrive as a Poisson process spread over every tenant's queues; each queue has
its own agents on one node. A call waits until the longest-idle agent is free (FIFO),
abandons when its patience runs out first, or times out at the queue's limit; an offer
is answered, declined (USER_BUSY), not answered (NO_ANSWER) or abandoned while the
agent rings. Every call becomes one captured archetype, re-timed to the simulated
phase durations, so the ground truth (who waited how long, who talked how long) is
known exactly before a single event is rendered.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from ccod_fs.simulator.archetypes import Archetype, archetype
from ccod_fs.simulator.model import CallTruth, NodeIdentity
from ccod_fs.simulator.replay import DEFAULT_START_US
from ccod_fs.simulator.stream import fresh_uuids

TENANT_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka")
QUEUE_NAMES = ("support", "sales", "billing", "tech")
SECOND = 1_000_000


_TRANSFERABLE = frozenset({"answered", "answered-dtmf", "answered-agent-hangup"})


@dataclass(frozen=True, slots=True)
class LoadProfile:
    """What to simulate. Durations in seconds; probabilities per call or per offer."""

    calls: int = 1000
    nodes: int = 2
    tenants: int = 3
    queues_per_tenant: int = 2
    agents_per_queue: int = 4
    arrivals_per_s: float = 5.0  # over the whole system (virtual time)
    mean_talk_s: float = 45.0
    min_talk_s: float = 3.0
    mean_patience_s: float = 40.0
    max_wait_s: float | None = 120.0  # queue timeout (max-wait-time-with-no-agent style)
    ring_s: tuple[float, float] = (1.0, 4.0)
    p_offer_failures: float = 0.05  # NO_ANSWER then USER_BUSY before an agent answers
    p_ring_abandon: float = 0.03  # caller hangs up while the agent rings
    p_agent_hangup: float = 0.15
    p_dtmf: float = 0.2
    p_hold: float = 0.15
    p_transfer: float = 0.08  # answered calls the agent blind-transfers out as the talk ends
    wrap_up_s: float = 3.0
    no_answer_delay_s: float = 10.0
    busy_delay_s: float = 10.0
    seed: int = 0
    start_us: int = DEFAULT_START_US


@dataclass(frozen=True, slots=True)
class QueueSpec:
    tenant: str
    name: str
    node: int
    entry: str
    agents: tuple[str, ...]

    @property
    def full(self) -> str:
        return f"{self.name}@{self.tenant}"


@dataclass(slots=True)
class CallPlan:
    """One simulated call: which archetype, when, for whom, and how long each phase lasts."""

    index: int
    queue: QueueSpec
    archetype: str
    join_us: int
    phase_us: list[int | None]  # per archetype phase; None keeps the captured duration
    agents: list[str]
    caller: str
    holds: list[tuple[int, int]] = field(default_factory=list)  # (start µs, end µs)
    transfer_to: str | None = None  # the agent blind-transfers the caller here as the talk ends
    uuid_seed: int = 0
    breaks: list[int] = field(default_factory=list)
    shifts: list[int] = field(default_factory=list)

    @property
    def arch(self) -> Archetype:
        return archetype(self.archetype)

    def warp(self, capture_us: int) -> int:
        return capture_us + self.shifts[bisect.bisect_right(self.breaks, capture_us)]


def topology(profile: LoadProfile) -> tuple[list[NodeIdentity], list[QueueSpec]]:
    rng = Random(f"topology:{profile.seed}")
    nodes = [NodeIdentity(core_uuid=fresh_uuids(rng, 1)[0], hostname=f"fs{n + 1}",
                          ipv4=f"192.0.2.{n + 10}") for n in range(profile.nodes)]
    queues = []
    k = 0
    for t in range(profile.tenants):
        tenant = TENANT_NAMES[t] if t < len(TENANT_NAMES) else f"tenant{t}"
        for q in range(profile.queues_per_tenant):
            name = QUEUE_NAMES[q] if q < len(QUEUE_NAMES) else f"queue{q}"
            agents = tuple(f"{10000 + t * 1000 + q * 100 + a}@{tenant}" for a in range(profile.agents_per_queue))
            queues.append(QueueSpec(tenant, name, k % profile.nodes, str(7000 + t * 10 + q), agents))
            k += 1
    return nodes, queues


def _time_plan(plan: CallPlan) -> None:
    """Breakpoints and shifts mapping the archetype's capture times to this call's times."""
    arch = plan.arch
    ts = arch.capture_ts
    join_idx = arch.milestone("member-queue-start")
    base = plan.join_us - ts[join_idx]
    breaks, shifts = [], [base]
    for phase, target in zip(arch.phases, plan.phase_us, strict=True):
        if target is None or not phase.stretch:
            continue
        stretchable = sum(d for _, d in phase.stretch)
        room = max(target - phase.fixed_us, 0)
        for n, (i, d) in enumerate(phase.stretch):
            if stretchable:
                new = room * d // stretchable
            else:
                new = room if n == len(phase.stretch) - 1 else 0
            breaks.append(ts[i] + 1)
            shifts.append(shifts[-1] + new - d)
    plan.breaks, plan.shifts = breaks, shifts


def _truth(plan: CallPlan, node: NodeIdentity) -> CallTruth:
    arch = plan.arch
    tpls = arch.templates.templates
    at = {a: plan.warp(tpls[i].ts) for a, i in reversed(arch.milestones)}  # first occurrence wins
    caller_index = tpls[0].unique_id or 0
    caller_uuid = fresh_uuids(Random(plan.uuid_seed), caller_index + 1)[caller_index]
    answered = at.get("bridge-agent-start")
    return CallTruth(
        node=node.hostname, tenant=plan.queue.tenant, queue=plan.queue.full, caller_uuid=caller_uuid,
        caller_number=plan.caller, outcome=arch.outcome, joined_us=at["member-queue-start"],
        ended_us=at["member-queue-end"], agent=plan.agents[-1] if answered is not None else None,
        answered_us=answered, failed_offers=[o for o in arch.offers if o != "answered"],
        holds=len(plan.holds), dtmf=1 if plan.archetype == "answered-dtmf" else 0,
        transferred_to=plan.transfer_to,
    )


class LoadSimulation:
    """Plans every call of a profile; ``truth`` holds the ground truth, in arrival order."""

    def __init__(self, profile: LoadProfile) -> None:
        self.profile = profile
        self.nodes, self.queues = topology(profile)
        self.plans: list[CallPlan] = []
        self.truth: list[CallTruth] = []
        self._plan()

    def _plan(self) -> None:
        p = self.profile
        rng = Random(f"load:{p.seed}")
        free_at: dict[str, int] = defaultdict(lambda: p.start_us)
        t = p.start_us + 2 * SECOND  # agents log in at start_us
        for index in range(p.calls):
            t += int(rng.expovariate(p.arrivals_per_s) * SECOND)
            queue = rng.choice(self.queues)
            plan = self._plan_call(rng, index, queue, t, free_at)
            if plan.archetype in _TRANSFERABLE:
                # Its own stream of randomness: adding transfers leaves every other choice as it was.
                pick = Random(f"transfer:{p.seed}:{index}")
                if pick.random() < p.p_transfer:
                    plan.transfer_to = f"55590{pick.randrange(100):02d}"
            _time_plan(plan)
            self.plans.append(plan)
            self.truth.append(_truth(plan, self.nodes[queue.node]))

    def _plan_call(self, rng: Random, index: int, queue: QueueSpec, join: int,
                   free_at: dict[str, int]) -> CallPlan:
        p = self.profile
        caller = str(5_550_000_000 + index)
        patience = int(rng.expovariate(1 / p.mean_patience_s) * SECOND) + SECOND
        agent = min(queue.agents, key=lambda a: (free_at[a], a))
        offer = max(join, free_at[agent])
        wait = offer - join
        max_wait = int(p.max_wait_s * SECOND) if p.max_wait_s else None

        def plan(name: str, phases: list[int | None], agents: list[str]) -> CallPlan:
            return CallPlan(index, queue, name, join, phases, agents, caller, uuid_seed=rng.getrandbits(64))

        if max_wait is not None and wait >= max_wait and patience >= max_wait:
            return plan("timeout", [max_wait], [])
        if wait >= patience:
            return plan("abandoned-waiting", [patience], [])
        ring = int(rng.uniform(*p.ring_s) * SECOND)
        u = rng.random()
        if u < p.p_ring_abandon:
            ring = int(rng.uniform(1.0, 8.0) * SECOND)
            free_at[agent] = offer + ring + SECOND
            return plan("abandoned-ringing", [wait, ring], [agent])
        talk = max(int(rng.expovariate(1 / p.mean_talk_s) * SECOND), int(p.min_talk_s * SECOND))
        if u < p.p_ring_abandon + p.p_offer_failures and wait == 0 and len(queue.agents) >= 3:
            return self._plan_failures(plan, queue, agent, join, ring, talk, free_at)
        if wait == 0 and rng.random() < p.p_agent_hangup:
            name = "answered-agent-hangup"
        elif rng.random() < p.p_dtmf:
            name = "answered-dtmf"
        else:
            name = "answered"
        call = plan(name, [wait, ring, talk], [agent])
        answered = offer + ring
        if rng.random() < p.p_hold:
            start = answered + int(talk * rng.uniform(0.2, 0.5))
            call.holds.append((start, start + int(talk * rng.uniform(0.1, 0.3))))
        free_at[agent] = answered + talk + int(p.wrap_up_s * SECOND)
        return call

    def _plan_failures(
        self, plan: Callable[[str, list[int | None], list[str]], CallPlan], queue: QueueSpec, first: str,
        join: int, ring: int, talk: int, free_at: dict[str, int],
    ) -> CallPlan:
        """NO_ANSWER by ``first``, USER_BUSY by a second agent, answered by a third."""
        p = self.profile
        arch = archetype("answered-after-failures")
        no_answer_ring = arch.phases[1].capture_us
        busy_ring = arch.phases[3].capture_us
        t1_end = join + no_answer_ring
        free_at[first] = t1_end + int(p.no_answer_delay_s * SECOND)
        second = min((a for a in queue.agents if a != first), key=lambda a: (free_at[a], a))
        offer2 = max(t1_end, free_at[second])
        free_at[second] = offer2 + busy_ring + int(p.busy_delay_s * SECOND)
        third = min((a for a in queue.agents if a not in (first, second)), key=lambda a: (free_at[a], a))
        offer3 = max(offer2 + busy_ring, free_at[third])
        free_at[third] = offer3 + ring + talk + int(p.wrap_up_s * SECOND)
        phases: list[int | None] = [None, None, offer2 - t1_end, None, offer3 - offer2 - busy_ring, ring, talk]
        return plan("answered-after-failures", phases, [first, second, third])

    # -- views -------------------------------------------------------------------------------------

    def node_plans(self, node: int) -> list[CallPlan]:
        return [plan for plan in self.plans if plan.queue.node == node]

    def totals(self) -> dict[tuple[str, str], QueueTotals]:
        """Ground-truth counters per (tenant, queue)."""
        out: dict[tuple[str, str], QueueTotals] = {}
        for call in self.truth:
            totals = out.setdefault((call.tenant, call.queue), QueueTotals())
            totals.add(call)
        return out


@dataclass(slots=True)
class QueueTotals:
    offered: int = 0
    answered: int = 0
    abandoned_waiting: int = 0
    abandoned_ringing: int = 0
    timeout: int = 0
    failed_offers: int = 0
    wait_us: int = 0  # summed over every call (until answer or until the caller left)
    talk_us: int = 0
    holds: int = 0
    transferred: int = 0

    @property
    def abandoned(self) -> int:
        return self.abandoned_waiting + self.abandoned_ringing

    def add(self, call: CallTruth) -> None:
        self.offered += 1
        if call.outcome == "answered":
            self.answered += 1
        elif call.outcome == "abandoned_waiting":
            self.abandoned_waiting += 1
        elif call.outcome == "abandoned_ringing":
            self.abandoned_ringing += 1
        elif call.outcome == "timeout":
            self.timeout += 1
        self.failed_offers += len(call.failed_offers)
        self.wait_us += call.wait_us
        self.talk_us += call.talk_us
        self.holds += call.holds
        self.transferred += call.transferred_to is not None
