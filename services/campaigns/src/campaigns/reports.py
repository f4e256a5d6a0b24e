"""What a campaign did: the funnel per step and variant, and what it recovered against its control group.

Everyone enrolled counts in the group they were assigned to, message or not (see `domain.uplift`).
Recovered revenue is the amount of the order that ended each enrolment. Offer cost is the discount
given on orders that used a step's percentage coupon, `amount × p / (100 − p)` (the order amount
is after the discount); incentives that are not money are counted, not priced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.domain.uplift import Group, Uplift, uplift

RELIABLE_GROUP = 30  # below this many customers in a group, the normal-approximation interval is too narrow

_SCOPE = "e.workspace_id = :ws AND e.campaign_id = :cid AND (CAST(:cycle AS int) IS NULL OR e.cycle = :cycle)"

_GROUPS = text(
    f"""
    SELECT e.control, count(*) AS customers,
           count(*) FILTER (WHERE e.outcome = 'reactivated') AS reactivated,
           count(*) FILTER (WHERE e.state = 'active') AS running,
           COALESCE(sum(CAST(e.credit->>'amount' AS float8)) FILTER (WHERE e.outcome = 'reactivated'), 0) AS revenue,
           COALESCE(sum(CAST(e.credit->>'amount' AS float8) ^ 2) FILTER (WHERE e.outcome = 'reactivated'), 0) AS squares
    FROM enrolment e WHERE {_SCOPE} GROUP BY e.control
    """  # noqa: S608 - a constant scope clause
)

_FUNNEL = text(
    f"""
    SELECT m.step, m.variant,
           count(*) FILTER (WHERE m.state = 'sent') AS sent,
           count(*) FILTER (WHERE m.state IN ('failed', 'in_doubt')) AS failed,
           count(m.delivered_at) AS delivered, count(m.opened_at) AS opened, count(m.clicked_at) AS clicked,
           count(m.replied_at) AS replied, count(m.bounced_at) AS bounced
    FROM message m JOIN enrolment e ON e.enrolment_id = m.enrolment_id
    WHERE {_SCOPE} GROUP BY m.step, m.variant ORDER BY m.step, m.variant
    """  # noqa: S608 - a constant scope clause
)

_CREDITED = text(
    f"""
    SELECT CAST(e.credit->>'step' AS int) AS step, e.credit->>'variant' AS variant, count(*) AS reactivated,
           COALESCE(sum(CAST(e.credit->>'amount' AS float8)), 0) AS revenue,
           count(*) FILTER (WHERE CAST(e.credit->>'by_coupon' AS bool)) AS by_coupon
    FROM enrolment e WHERE {_SCOPE} AND e.outcome = 'reactivated' AND NOT e.control
    GROUP BY 1, 2
    """  # noqa: S608 - a constant scope clause
)

_OFFER_COST = text(
    f"""
    SELECT COALESCE(sum(CAST(e.credit->>'amount' AS float8) * CAST(m.offer->>'percent' AS float8)
                        / (100 - CAST(m.offer->>'percent' AS float8))), 0)
    FROM enrolment e JOIN message m ON m.enrolment_id = e.enrolment_id AND m.step = CAST(e.credit->>'step' AS int)
    WHERE {_SCOPE} AND e.outcome = 'reactivated' AND CAST(e.credit->>'by_coupon' AS bool)
      AND m.offer->>'kind' = 'percent_off' AND CAST(m.offer->>'percent' AS float8) < 100
    """  # noqa: S608 - a constant scope clause
)

_CYCLES = text(
    """
    SELECT e.cycle, count(*) AS enrolled, count(*) FILTER (WHERE e.outcome = 'reactivated') AS reactivated,
           COALESCE(sum(CAST(e.credit->>'amount' AS float8)) FILTER (WHERE e.outcome = 'reactivated'), 0) AS revenue
    FROM enrolment e WHERE e.workspace_id = :ws AND e.campaign_id = :cid GROUP BY e.cycle ORDER BY e.cycle
    """
)


@dataclass
class StepLine:
    step: int
    variant: str
    sent: int = 0
    failed: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    bounced: int = 0
    reactivated: int = 0
    by_coupon: int = 0
    recovered_revenue: float = 0.0


@dataclass
class Report:
    campaign_id: str
    cycle: int | None
    treatment: Group
    control: Group
    running: int
    offer_cost: float
    uplift: Uplift | None
    notes: list[str]
    steps: list[StepLine] = field(default_factory=list)
    cycles: list[dict[str, float]] = field(default_factory=list)

    @property
    def enrolled(self) -> int:
        return self.treatment.customers + self.control.customers


async def report(conn: AsyncConnection, workspace_id: str, campaign_id: str, cycle: int | None = None) -> Report:
    params = {"ws": workspace_id, "cid": campaign_id, "cycle": cycle}
    groups = {True: Group(0, 0, 0.0, 0.0), False: Group(0, 0, 0.0, 0.0)}
    running = 0
    for r in (await conn.execute(_GROUPS, params)).mappings():
        groups[r["control"]] = Group(r["customers"], r["reactivated"], r["revenue"], r["squares"])
        running += r["running"]
    lines: dict[tuple[int, str], StepLine] = {}
    for r in (await conn.execute(_FUNNEL, params)).mappings():
        lines[(r["step"], r["variant"])] = StepLine(**r)
    for r in (await conn.execute(_CREDITED, params)).mappings():
        if r["step"] is None:
            continue
        line = lines.setdefault((r["step"], r["variant"] or "default"), StepLine(r["step"], r["variant"] or "default"))
        line.reactivated, line.by_coupon, line.recovered_revenue = r["reactivated"], r["by_coupon"], r["revenue"]
    offer_cost = float((await conn.execute(_OFFER_COST, params)).scalar_one())
    treatment, control = groups[False], groups[True]
    notes: list[str] = []
    measured = None
    if treatment.customers and control.customers:
        measured = uplift(treatment, control, offer_cost=offer_cost)
        if min(treatment.customers, control.customers) < RELIABLE_GROUP:
            notes.append(f"fewer than {RELIABLE_GROUP} customers in a group: the intervals are too narrow to rely on")
    else:
        notes.append("no uplift yet: it needs customers in both the treatment and the control group")
    if running:
        notes.append(f"{running} enrolments are still running; their outcomes are not in yet")
    cycles = [dict(r) for r in (await conn.execute(_CYCLES, params)).mappings()]
    return Report(
        campaign_id,
        cycle,
        treatment,
        control,
        running,
        offer_cost,
        measured,
        notes,
        sorted(lines.values(), key=lambda s: (s.step, s.variant)),
        cycles,
    )
