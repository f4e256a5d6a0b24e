"""Which campaign a lapsed customer enters, read from the `customer_changed` snapshot alone.

The first row that applies decides:

| the customer | campaign |
| --- | --- |
| neither lapsed nor lost (lost ones come back after the cool-off) | none |
| withdrew consent for everything | none |
| costs more than they bring, or scoring says not worth winning back | none |
| answered a win-back without buying | nurture |
| scoring says a light touch is all they are worth | light touch |
| very high or high tier, or Pareto, and phone not refused | high value (a call first) |
| left unhappy | left unhappy (acknowledges the reasons first) |
| low tier | light touch |
| anyone else (including no tier: no revenue in the last 12 months) | standard |

Then responsiveness picks the twin: customers contacted before who never answered anything
(`non_responder`) go to the improbable responders' campaign; those who answered, or were never
contacted, to the probable one. Without a scoring decision every customer is eligible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from campaigns.domain.model import Campaign, WinbackDecision
from campaigns.domain.sequences import READY_MADE, Kind, campaign_id
from cartera_common.events.changes import CustomerSnapshot

WINBACK_STATUSES = ("lapsed", "lost")
HIGH_TIERS = ("very_high", "high")


@dataclass(frozen=True, slots=True)
class Placement:
    campaign_id: str | None  # None: no campaign for this customer
    kind: Kind | None
    reason: str


def unprofitable(customer: CustomerSnapshot) -> bool:
    """The segmenter's verdict on the snapshot: profit below zero with a cost to serve."""
    return customer.unprofitable


def place(
    customer: CustomerSnapshot,
    decision: WinbackDecision | None = None,
    *,
    responded_without_buying: bool = False,
) -> Placement:
    """The ready-made campaign for this customer, with the reason the enrolment's path will show."""
    if customer.status not in WINBACK_STATUSES:
        return Placement(None, None, f"{customer.status}, not lapsed")
    if customer.consent.get("all") is False:
        return Placement(None, None, "consent withdrawn")
    if unprofitable(customer):
        return Placement(None, None, "costs more than they bring")
    if decision is not None and (not decision.worth or decision.intensity == "none"):
        return Placement(None, None, "not worth winning back (scoring)")
    kind, reason = _kind(customer, decision, responded_without_buying)
    improbable = customer.responsiveness == "non_responder"
    if improbable and kind != "nurture":
        reason += "; never answered before"
    return Placement(campaign_id(kind, improbable=improbable), kind, reason)


def _kind(customer: CustomerSnapshot, decision: WinbackDecision | None, responded: bool) -> tuple[Kind, str]:
    if responded:
        return "nurture", "answered without buying"
    if decision is not None and decision.intensity == "light":
        return "light_touch", "worth a light touch (scoring)"
    if (customer.tier in HIGH_TIERS or customer.pareto) and customer.consent.get("phone") is not False:
        return "high_value", f"high value ({'Pareto' if customer.pareto else customer.tier} customer)"
    if customer.unhappy:
        return "unhappy", "left unhappy: " + (", ".join(customer.leave_reasons) or "reasons not recorded")
    if customer.tier == "low":
        return "light_touch", "low value"
    return "standard", "lapsed"


def choose(
    customer: CustomerSnapshot,
    enabled: Iterable[Campaign],
    decision: WinbackDecision | None = None,
    *,
    responded_without_buying: bool = False,
) -> Campaign | None:
    """The workspace's pick: its own campaigns by audience, against the ready-made route, higher priority first.

    Ready-made campaigns are reached only through `place` (their audiences only describe them), and
    nobody `place` turns away (consent, cost, scoring) enters any campaign.
    """
    campaigns = list(enabled)
    routed = place(customer, decision, responded_without_buying=responded_without_buying)
    if routed.campaign_id is None:
        return None
    # The workspace's own campaigns come first, so they win a tie: someone defined them on purpose.
    candidates = [c for c in campaigns if c.id not in READY_MADE and c.audience.matches(customer, decision)]
    candidates += [c for c in campaigns if c.id == routed.campaign_id]
    return max(candidates, key=lambda c: c.priority, default=None)
