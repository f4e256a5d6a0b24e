"""The machine's effects, carried out in the caller's transaction.

Every path that moves enrolments (a lapse, an order, a response, a withdrawal, a timer) reads the
enrolments it needs under a row lock, asks `domain.machine` what happens, and hands the
transitions to a `Batch`, which writes them in one go: the enrolment rows (their own timers), the
messages to deliver (rendered now, so what went out is on record), the outcomes for
`campaign-outcomes` in the outbox, and the nurture enrolments a response starts. Nothing is
delivered here: the dispatcher sends what was committed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns import catalogue, customers, enrolments
from campaigns.customers import Customer, CustomerKey
from campaigns.domain import machine
from campaigns.domain.audience import choose
from campaigns.domain.effects import CompleteEnrolment, Effect, EnrolIn, PublishOutcome, SendMessage, Transition
from campaigns.domain.model import DEFAULT_VARIANT, Campaign, Enrolment, consented
from campaigns.domain.pacing import Pending as Due
from campaigns.domain.pacing import after_cap, daily_allowance, day_start, pace
from campaigns.domain.uplift import Tally, thompson
from campaigns.messages import Composer, Pending
from cartera_common.events.envelope import derived_envelope
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import CAMPAIGN_OUTCOMES
from cartera_common.tracing import trace_for

SOURCE = "campaigns"


@dataclass
class Batch:
    """One transaction's worth of transitions; `flush` writes them all."""

    composer: Composer
    now: datetime
    rows: dict[str, dict[str, object]] = field(default_factory=dict)
    messages: list[Pending] = field(default_factory=list)
    outbox: list[OutMessage] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    nurture: list[EnrolIn] = field(default_factory=list)

    def add(
        self,
        t: Transition,
        before: Enrolment | None,
        *,
        cycle: int,
        campaign: Campaign,
        customer: Customer,
        trace: str | None = None,
    ) -> None:
        """`trace` is the enrolment's own (the lapse that started it); what it sends and publishes joins it."""
        if t.enrolment is before:
            return
        row = enrolments.to_row(t.enrolment, cycle=cycle, priority=campaign.priority, traceparent=trace)
        self.rows[t.enrolment.id] = row
        for effect in t.effects:
            if isinstance(effect, SendMessage):
                self.messages.append(self.composer.compose(effect, customer, campaign, self.now, trace))
            elif isinstance(effect, CompleteEnrolment):
                self.ended.add(effect.enrolment_id)
            elif isinstance(effect, PublishOutcome):
                self.outbox.append(outcome_message(effect, trace))
            elif isinstance(effect, EnrolIn):
                self.nurture.append(effect)

    def record(self, a: Active, t: Transition) -> None:
        """A running enrolment's move, with what it runs under (cycle, campaign, customer, trace)."""
        self.add(t, a.enrolment, cycle=a.cycle, campaign=a.campaign, customer=a.customer, trace=a.trace)

    async def flush(self, conn: AsyncConnection) -> None:
        await enrolments.save(conn, list(self.rows.values()))
        await self.composer.save(conn, self.messages)
        if self.ended:
            # A message queued for an enrolment that has just ended (an order, an unsubscribe) never goes.
            await conn.execute(
                text(
                    """
                    UPDATE message SET state = 'withheld', error = 'enrolment ended before sending'
                    WHERE enrolment_id = ANY(CAST(:ids AS text[])) AND state IN ('queued', 'retrying')
                    """
                ),
                {"ids": sorted(self.ended)},
            )
        await emit(conn, self.outbox)
        nurture, self.nurture = self.nurture, []
        self.rows, self.messages, self.outbox, self.ended = {}, [], [], set()
        if nurture:
            wanted = [(n.workspace_id, n.customer_id) for n in nurture]
            found = await customers.load(conn, wanted)
            items = [
                (found[(n.workspace_id, n.customer_id)], n.campaign_id)
                for n in nurture
                if (n.workspace_id, n.customer_id) in found
            ]
            await enrol(conn, self, items)


def outcome_message(p: PublishOutcome, trace: str | None = None) -> OutMessage:
    identity = f"{p.type}:{p.enrolment_id}:{p.step}:{p.at.isoformat()}"
    envelope = derived_envelope(
        p.type,
        workspace_id=p.workspace_id,
        customer_id=p.customer_id,
        payload=p.payload(),
        at=p.at,
        source=SOURCE,
        identity=identity,
    )
    return OutMessage.of(CAMPAIGN_OUTCOMES, envelope, trace)


async def enrol(conn: AsyncConnection, batch: Batch, items: Sequence[tuple[Customer, str | None]]) -> int:
    """Starts each customer on the named campaign, or on the one the audience rules choose; returns how many began.

    The caller holds the customers' rows locked, so no other path enrols them meanwhile.
    """
    if not items:
        return 0
    keys = [c.key for c, _ in items]
    history = await enrolments.history(conn, keys, lock=True)
    campaigns = await catalogue.enabled(conn, {c.workspace_id for c, _ in items})
    started = 0
    for customer, wanted in items:
        snapshot = customer.snapshot
        past = [e for e, _ in history.get(customer.key, [])]
        available = campaigns[customer.workspace_id]
        if wanted is not None:
            campaign = available.get(wanted)
        elif snapshot is not None:
            responded = any(e.outcome == "responded" for e in past[-1:])
            campaign = choose(snapshot, available.values(), customer.decision, responded_without_buying=responded)
        else:
            campaign = None
        if campaign is None:
            continue
        t = machine.enrol(
            campaign, workspace_id=customer.workspace_id, customer_id=customer.customer_id, now=batch.now, history=past
        )
        if t is None:
            continue
        cycle = 1 + sum(e.campaign_id == campaign.id for e in past)
        trace = trace_for(customer.workspace_id, customer.customer_id)
        batch.add(t, None, cycle=cycle, campaign=campaign, customer=customer, trace=trace)
        history.setdefault(customer.key, []).append((t.enrolment, cycle))
        started += 1
    await batch.flush(conn)
    return started


@dataclass(frozen=True, slots=True)
class Active:
    enrolment: Enrolment
    cycle: int
    campaign: Campaign
    customer: Customer
    trace: str | None = None


async def active(conn: AsyncConnection, keys: Iterable[CustomerKey]) -> dict[CustomerKey, list[Active]]:
    """The customers' running enrolments, locked, with what the machine needs beside them."""
    return await _with_context(conn, await enrolments.of_customers(conn, keys, active_only=True, lock=True))


async def _with_context(conn: AsyncConnection, rows: Sequence[Mapping[Any, Any]]) -> dict[CustomerKey, list[Active]]:
    if not rows:
        return {}
    found = await customers.load(conn, [(r["workspace_id"], r["customer_id"]) for r in rows])
    campaigns = await catalogue.every(conn, {r["workspace_id"] for r in rows})
    out: dict[CustomerKey, list[Active]] = defaultdict(list)
    for r in rows:
        key = (r["workspace_id"], r["customer_id"])
        campaign = campaigns[key[0]].get(r["campaign_id"])
        if campaign is None:  # a workspace's own campaign deleted under it; nothing to run
            continue
        customer = found.get(key) or Customer(*key)
        out[key].append(Active(enrolments.from_row(r), r["cycle"], campaign, customer, r["traceparent"]))
    return out


# --- reactions to what the customer did ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    at: datetime
    coupon: str | None
    amount: float | None


async def on_orders(conn: AsyncConnection, batch: Batch, orders: Mapping[CustomerKey, Sequence[Order]]) -> None:
    """The first order after enrolment ends the sequence, credited to the step whose coupon it carries."""
    for key, running in (await active(conn, orders)).items():
        in_order = sorted(orders[key], key=lambda o: o.at)
        for a in running:
            winning = next((o for o in in_order if o.at >= a.enrolment.enrolled_at), None)
            if winning is not None:
                t = machine.order(a.enrolment, at=winning.at, coupon=winning.coupon, amount=winning.amount)
                batch.record(a, t)
    await batch.flush(conn)


async def on_responses(
    conn: AsyncConnection, batch: Batch, responses: Mapping[CustomerKey, Sequence[tuple[datetime, str]]]
) -> None:
    """A reply, click or positive call: noted, and (by the campaign's exit rule) a move to nurture."""
    await customers.load(conn, responses, lock=True)  # a nurture enrolment may start: hold the customers
    for key, running in (await active(conn, responses)).items():
        for a in running:
            batch.record(a, _fold(a, sorted(responses[key]), _respond))
    await batch.flush(conn)


async def on_withdrawals(
    conn: AsyncConnection, batch: Batch, withdrawn: Mapping[CustomerKey, Sequence[tuple[datetime, str]]]
) -> None:
    """A consent withdrawn for a channel a campaign uses (or for everything) ends that campaign for good."""
    for key, running in (await active(conn, withdrawn)).items():
        for a in running:
            batch.record(a, _fold(a, sorted(withdrawn[key]), _withdraw))
    await batch.flush(conn)


def _respond(e: Enrolment, campaign: Campaign, response: tuple[datetime, str]) -> Transition:
    return machine.respond(e, campaign, at=response[0], kind=response[1])


def _withdraw(e: Enrolment, campaign: Campaign, withdrawal: tuple[datetime, str]) -> Transition:
    return machine.withdraw(e, campaign, at=withdrawal[0], consent=withdrawal[1])


def _fold(
    a: Active,
    happenings: Sequence[tuple[datetime, str]],
    react: Callable[[Enrolment, Campaign, tuple[datetime, str]], Transition],
) -> Transition:
    """Several reactions in a row as one transition: the last enrolment, every effect on the way."""
    e, effects = a.enrolment, list[Effect]()
    for h in happenings:
        t = react(e, a.campaign, h)
        e, effects = t.enrolment, [*effects, *t.effects]
    return Transition(e, tuple(effects))


async def cancel(conn: AsyncConnection, batch: Batch, keys: Iterable[CustomerKey], *, reason: str) -> None:
    for running in (await active(conn, keys)).values():
        for a in running:
            t = machine.cancel(a.enrolment, at=batch.now, reason=reason)
            batch.record(a, t)
    await batch.flush(conn)


# --- time: the scheduler's step -----------------------------------------------------------------

_DUE = text(
    f"""
    SELECT {enrolments.COLUMNS} FROM enrolment e
    WHERE state = 'active' AND due_at <= :now ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED
    """  # noqa: S608 - a constant column list
)

_RECENT = text(
    """
    SELECT m.workspace_id, m.customer_id, m.created_at FROM message m
    JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
      ON m.workspace_id = k.ws AND m.customer_id = k.cs
    WHERE m.created_at > :since AND m.state NOT IN ('withheld', 'failed')
    """
)

_USED_TODAY = text(
    "SELECT count(*) FROM message WHERE workspace_id = :ws AND created_at >= :since AND state NOT IN ('withheld', 'failed')"
)

_TALLIES = text(
    """
    SELECT m.step, m.variant, count(*) AS sent, count(*) FILTER (WHERE e.outcome = 'reactivated') AS reactivated
    FROM message m JOIN enrolment e ON e.enrolment_id = m.enrolment_id
    WHERE m.workspace_id = :ws AND m.campaign_id = :cid
    GROUP BY m.step, m.variant
    """
)


async def step_due(conn: AsyncConnection, batch: Batch, *, limit: int) -> int:
    """Runs every enrolment whose time has come (up to `limit`), under the workspace's pacing; returns how many."""
    now = batch.now
    rows = list((await conn.execute(_DUE, {"now": now, "limit": limit})).mappings())
    if not rows:
        return 0
    by_customer = await _with_context(conn, rows)
    workspaces = {k[0] for k in by_customer}
    rules = await catalogue.pacing(conn, workspaces)
    widest = max(r.cap_window for r in rules.values())
    recent = await _recent_sends(conn, by_customer, now - widest)
    allowance = {
        ws: daily_allowance(
            int((await conn.execute(_USED_TODAY, {"ws": ws, "since": day_start(now, rules[ws])})).scalar_one()),
            now,
            rules[ws],
        )
        for ws in workspaces
    }
    left = {ws: a.count for ws, a in allowance.items()}
    tallies = _Tallies(conn)
    for key, running in by_customer.items():
        ws, r = key[0], rules[key[0]]
        consent = running[0].customer.effective_consent()
        snapshot = running[0].customer.snapshot
        # Only what will reach the customer is paced; the rest (control, the end, no consent) runs now.
        sends = [a for a in running if _will_send(a, consent)]
        for a in running:
            if a not in sends:
                t = machine.due(a.enrolment, a.campaign, now, consent=consent)
                batch.record(a, t)
        pending = [Due(a.enrolment.id, a.campaign.priority, a.enrolment.due_at or now) for a in sends]
        tz = snapshot.time_zone if snapshot else None
        slots = {s.key: s.at for s in pace(pending, now=now, sent_at=recent.get(key, []), time_zone=tz, rules=r)}
        for a in sends:
            at = slots[a.enrolment.id]
            if at > now:
                capped = after_cap(now, recent.get(key, []), r) > now
                t = machine.defer(a.enrolment, now=now, until=at, reason="frequency cap" if capped else "quiet hours")
            elif left[ws] <= 0:
                until = daily_allowance(r.daily_limit, now, r).opens_at
                t = machine.defer(a.enrolment, now=now, until=until, reason="daily sending limit")
            else:
                left[ws] -= 1
                variant = await tallies.choose(a)
                t = machine.due(a.enrolment, a.campaign, now, variant=variant, consent=consent)
            batch.record(a, t)
    await batch.flush(conn)
    return len(rows)


def _will_send(a: Active, consent: Mapping[str, bool]) -> bool:
    e, steps = a.enrolment, a.campaign.steps
    return not e.control and e.step < len(steps) and consented(consent, steps[e.step].channel)


async def _recent_sends(
    conn: AsyncConnection, keys: Iterable[CustomerKey], since: datetime
) -> dict[CustomerKey, list[datetime]]:
    wanted = sorted(keys)
    out: dict[CustomerKey, list[datetime]] = defaultdict(list)
    result = await conn.execute(_RECENT, {"ws": [k[0] for k in wanted], "cs": [k[1] for k in wanted], "since": since})
    for ws, cs, at in result:
        out[(ws, cs)].append(at)
    return out


@dataclass
class _Tallies:
    """Each step's variants' record, read once per campaign per tick, for Thompson sampling."""

    conn: AsyncConnection
    cache: dict[tuple[str, str], dict[tuple[int, str], Tally]] = field(default_factory=dict)

    async def choose(self, a: Active) -> str:
        step = a.campaign.steps[a.enrolment.step]
        if not step.variants:
            return DEFAULT_VARIANT
        key = (a.enrolment.workspace_id, a.campaign.id)
        if key not in self.cache:
            rows = await self.conn.execute(_TALLIES, {"ws": key[0], "cid": key[1]})
            self.cache[key] = {(r.step, r.variant): Tally(r.sent, r.reactivated) for r in rows}
        seen = self.cache[key]
        arms = {arm: seen.get((a.enrolment.step, arm), Tally(0, 0)) for arm in step.arms}
        # Seeded by the message it will be: a retried tick picks the same variant.
        rng = random.Random(machine.message_id(a.enrolment.id, a.enrolment.step))  # noqa: S311 - not security
        return thompson(arms, rng)


# --- re-entry: lost customers come back round after the cool-off ---------------------------------

_REENTRY = text(
    """
    SELECT c.workspace_id, c.customer_id FROM customer c
    WHERE c.snapshot->>'status' IN ('lapsed', 'lost') AND c.unsubscribed_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM enrolment e WHERE e.workspace_id = c.workspace_id
                      AND e.customer_id = c.customer_id AND (e.state = 'active' OR e.ended_at > :cooled))
      AND EXISTS (SELECT 1 FROM enrolment e WHERE e.workspace_id = c.workspace_id AND e.customer_id = c.customer_id)
      AND (c.workspace_id, c.customer_id) > (:after_ws, :after_cs)
    ORDER BY c.workspace_id, c.customer_id LIMIT :limit
    FOR UPDATE OF c SKIP LOCKED
    """
)


async def reenter(
    conn: AsyncConnection, batch: Batch, *, shortest_cooloff: timedelta, limit: int, after: CustomerKey
) -> tuple[int, CustomerKey | None]:
    """Offers the campaigns again to lapsed or lost customers whose last sequence cooled off.

    Only customers who were enrolled before: the rest enter on their lapse. Returns how many began
    and where to resume (None when the scan is done).
    """
    params = {"cooled": batch.now - shortest_cooloff, "limit": limit, "after_ws": after[0], "after_cs": after[1]}
    keys = [(r[0], r[1]) for r in await conn.execute(_REENTRY, params)]
    found = await customers.load(conn, keys)
    started = await enrol(conn, batch, [(found[k], None) for k in keys if k in found])
    return started, (keys[-1] if len(keys) == limit else None)


async def snapshot_changes(
    conn: AsyncConnection,
    batch: Batch,
    lapsed: Sequence[CustomerKey],
    returned: Mapping[CustomerKey, datetime | None],
) -> None:
    """A lapse (or a policy that makes a customer lapsed) enrols; a return without an order (policy) cancels.

    A return that came with an order is left to the order itself, which arrives on `events` and
    carries the coupon that credits the step.
    """
    if returned:
        ended = []
        for key, running in (await active(conn, returned)).items():
            last_order = returned[key]
            for a in running:
                if last_order is None or last_order < a.enrolment.enrolled_at:
                    ended.append(key)
        if ended:
            await cancel(conn, batch, ended, reason="no longer lapsed")
    if lapsed:
        found = await customers.load(conn, lapsed, lock=True)
        await enrol(conn, batch, [(c, None) for c in found.values()])
