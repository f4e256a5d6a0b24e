"""The campaigns service's reactions to its three topics.

- `customer-changes`: keep the customer's snapshot; a lapse enrols; a consent withdrawn stops; a
  return without an order (a policy change) cancels.
- `events`: an order ends a sequence and credits it; a reply, click or positive call is a
  response; consent and unsubscribes stop; engagement is recorded on the message; erasure erases.
- `scores`: scoring's "do we want them back?" decides who is enrolled from then on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns import customers, engine
from campaigns.customers import CustomerKey
from campaigns.domain.audience import WINBACK_STATUSES
from campaigns.domain.machine import response_kind
from campaigns.domain.model import Intensity, WinbackDecision
from campaigns.engine import Batch, Order
from campaigns.messages import Composer
from cartera_common.clock import Clock
from cartera_common.db import json_rows
from cartera_common.events import Envelope
from cartera_common.events.changes import CUSTOMER_CHANGED, SCORES_UPDATED, CustomerChanged, CustomerSnapshot

ENGAGEMENT_COLUMNS = {
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "replied": "replied_at",
    "bounced": "bounced_at",
    "complained": "bounced_at",
}
_ENGAGED = text(
    """
    UPDATE message m SET
        delivered_at = CASE WHEN t.col = 'delivered_at' THEN LEAST(COALESCE(m.delivered_at, t.at), t.at) ELSE m.delivered_at END,
        opened_at = CASE WHEN t.col = 'opened_at' THEN LEAST(COALESCE(m.opened_at, t.at), t.at) ELSE m.opened_at END,
        clicked_at = CASE WHEN t.col = 'clicked_at' THEN LEAST(COALESCE(m.clicked_at, t.at), t.at) ELSE m.clicked_at END,
        replied_at = CASE WHEN t.col = 'replied_at' THEN LEAST(COALESCE(m.replied_at, t.at), t.at) ELSE m.replied_at END,
        bounced_at = CASE WHEN t.col = 'bounced_at' THEN LEAST(COALESCE(m.bounced_at, t.at), t.at) ELSE m.bounced_at END
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(ws text, mid text, col text, at timestamptz)
    WHERE m.message_id = t.mid AND m.workspace_id = t.ws
    """
)


@dataclass(frozen=True)
class Handlers:
    clock: Clock
    composer: Composer

    def batch(self) -> Batch:
        return Batch(self.composer, self.clock.now())

    async def apply_changes(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        latest: dict[CustomerKey, tuple[datetime, CustomerChanged]] = {}
        for e in events:
            if e.type != CUSTOMER_CHANGED:
                continue
            key = (e.workspace_id, e.customer_id)
            if key not in latest or e.occurred_at >= latest[key][0]:
                latest[key] = (e.occurred_at, CustomerChanged.model_validate(e.payload))
        if not latest:
            return
        snapshots: dict[CustomerKey, tuple[datetime, CustomerSnapshot]] = {
            k: (at, c.customer) for k, (at, c) in latest.items()
        }
        await customers.save_snapshots(conn, snapshots)
        lapsed, returned = [], {}
        withdrawn: dict[CustomerKey, list[tuple[datetime, str]]] = defaultdict(list)
        for key, (at, change) in latest.items():
            status = change.customer.status
            if "status" in change.changes:
                if status in WINBACK_STATUSES:
                    lapsed.append(key)
                else:
                    returned[key] = change.customer.last_order_at
            if "consent" in change.changes:
                withdrawn[key] += [(at, channel) for channel, granted in change.customer.consent.items() if not granted]
        batch = self.batch()
        if withdrawn:
            await engine.on_withdrawals(conn, batch, withdrawn)
        await engine.snapshot_changes(conn, batch, lapsed, returned)

    async def apply_events(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        orders: dict[CustomerKey, list[Order]] = defaultdict(list)
        responses: dict[CustomerKey, list[tuple[datetime, str]]] = defaultdict(list)
        withdrawn: dict[CustomerKey, list[tuple[datetime, str]]] = defaultdict(list)
        consent: dict[CustomerKey, dict[str, bool]] = defaultdict(dict)
        engaged: list[dict[str, object]] = []
        erased: set[CustomerKey] = set()
        for e in events:
            key, p = (e.workspace_id, e.customer_id), e.payload
            if e.type == "order_completed":
                amount = p.get("amount")
                orders[key].append(
                    Order(e.occurred_at, _text(p.get("coupon_code")), float(amount) if amount is not None else None)
                )
            elif e.type in ("consent_changed", "unsubscribed"):
                channel = str(p.get("channel", "all"))
                granted = bool(p.get("granted", False)) if e.type == "consent_changed" else False
                consent[key][channel] = granted
                if not granted:
                    withdrawn[key].append((e.occurred_at, channel))
            elif e.type == "customer_erased":
                erased.add(key)
            else:
                kind = response_kind(e.type, p)
                if kind is not None:
                    responses[key].append((e.occurred_at, kind))
                if e.type == "message_engagement" and p.get("message_id") and p.get("kind") in ENGAGEMENT_COLUMNS:
                    col = ENGAGEMENT_COLUMNS[str(p["kind"])]
                    engaged.append({"ws": e.workspace_id, "mid": str(p["message_id"]), "col": col, "at": e.occurred_at})
        batch = self.batch()
        if responses or withdrawn:
            # Customers first, then enrolments, as every other path takes them: no lock-order deadlock
            # with the customer-changes consumer when a response starts a nurture enrolment.
            await customers.load(conn, responses.keys() | withdrawn.keys(), lock=True)
        if consent:
            await customers.save_consent(conn, consent)
        if withdrawn:
            await engine.on_withdrawals(conn, batch, withdrawn)
        if orders:
            await engine.on_orders(conn, batch, orders)
        if responses:
            await engine.on_responses(conn, batch, responses)
        if engaged:
            await conn.execute(_ENGAGED, {"rows": json_rows(engaged)})
        if erased:
            await engine.cancel(conn, batch, erased, reason="customer erased")
            await customers.erase(conn, erased)

    async def apply_scores(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        latest: dict[CustomerKey, tuple[datetime, WinbackDecision]] = {}
        for e in events:
            worth = e.payload.get("winback_worth")
            if e.type != SCORES_UPDATED or worth is None:
                continue
            key = (e.workspace_id, e.customer_id)
            intensity: Intensity = e.payload.get("winback_intensity") or ("full" if worth else "none")
            if key not in latest or e.occurred_at >= latest[key][0]:
                latest[key] = (e.occurred_at, WinbackDecision(bool(worth), intensity))
        await customers.save_decisions(conn, latest)


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
