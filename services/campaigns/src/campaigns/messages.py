"""Turning the machine's `SendMessage` into a message row: who it goes to and exactly what it says.

A message is rendered when its step runs and stored with its content, so the record shows what
went out even after a template changes. Its `created_at` is business time (the frequency cap and
the daily limit count it); `next_attempt_at` is wall-clock time, because delivery happens in
the real world whatever clock the sequence runs on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.customers import Customer
from campaigns.delivery import unsubscribe
from campaigns.delivery.templates import TemplateError, Templates, TemplateSource, message_context
from campaigns.domain.effects import SendMessage
from campaigns.domain.model import Campaign
from cartera_common.db import json_rows
from cartera_common.events.changes import CustomerSnapshot

_INSERT = text(
    """
    INSERT INTO message (message_id, workspace_id, customer_id, enrolment_id, campaign_id, step, variant, channel,
                         template_id, coupon, offer, call_to_action, recipient, subject, body, html, state, error,
                         next_attempt_at, created_at, traceparent)
    SELECT message_id, workspace_id, customer_id, enrolment_id, campaign_id, step, variant, channel, template_id,
           coupon, offer, call_to_action, recipient, subject, body, html, state, error, next_attempt_at, created_at,
           traceparent
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(
        message_id text, workspace_id text, customer_id text, enrolment_id text, campaign_id text, step int,
        variant text, channel text, template_id text, coupon text, offer jsonb, call_to_action text,
        recipient text, subject text, body text, html text, state text, error text,
        next_attempt_at timestamptz, created_at timestamptz, traceparent text)
    ON CONFLICT (message_id) DO NOTHING
    """
)

_CUSTOM = text(
    "SELECT workspace_id, template_id, subject, body, html FROM template WHERE workspace_id = ANY(CAST(:ws AS text[]))"
)


@dataclass(frozen=True, slots=True)
class Links:
    public_url: str
    secret: str

    def unsubscribe(self, workspace_id: str, customer_id: str) -> str:
        return unsubscribe.link(self.public_url, unsubscribe.sign(self.secret, workspace_id, customer_id))


@dataclass(frozen=True, slots=True)
class Pending:
    send: SendMessage
    customer: Customer
    campaign_name: str
    now: datetime
    trace: str | None


class Composer:
    def __init__(self, templates: Templates, links: Links) -> None:
        self.templates = templates
        self.links = links
        # A workspace's own set, compiled once per version of its sources, not once per batch.
        self._custom: dict[str, tuple[Mapping[str, TemplateSource], Templates]] = {}

    def compose(
        self, send: SendMessage, customer: Customer, campaign: Campaign, now: datetime, trace: str | None = None
    ) -> Pending:
        return Pending(send, customer, campaign.name, now, trace)

    async def save(self, conn: AsyncConnection, pending: Sequence[Pending]) -> None:
        """Renders with each workspace's own templates over the built-in ones, then stores the messages."""
        if not pending:
            return
        custom = await custom_sources(conn, {p.send.workspace_id for p in pending})
        wall = datetime.now(UTC)
        rows = [self._row(p, self._templates_of(p.send.workspace_id, custom), wall) for p in pending]
        await conn.execute(_INSERT, {"rows": json_rows(rows)})

    def _templates_of(self, workspace_id: str, custom: Mapping[str, Mapping[str, TemplateSource]]) -> Templates:
        sources = custom.get(workspace_id)
        if not sources:
            return self.templates
        cached = self._custom.get(workspace_id)
        if cached is None or cached[0] != sources:
            cached = self._custom[workspace_id] = (sources, self.templates.with_custom(sources))
        return cached[1]

    def _row(self, p: Pending, templates: Templates, wall: datetime) -> dict[str, object]:
        s, content = p.send, p.send.content
        snapshot = p.customer.snapshot or CustomerSnapshot(status="lapsed")
        url = self.links.unsubscribe(s.workspace_id, s.customer_id)
        subject = body = html = error = None
        state = "queued"
        try:
            context = message_context(
                snapshot, campaign_name=p.campaign_name, step=content, coupon=s.coupon, unsubscribe_url=url, now=p.now
            )
            rendered = templates.render(content.template_id, context)
            subject, body, html = rendered.subject, rendered.text, rendered.html
        except TemplateError as exc:
            state, error = "failed", f"template {content.template_id}: {exc}"
        return {
            "message_id": s.message_id,
            "workspace_id": s.workspace_id,
            "customer_id": s.customer_id,
            "enrolment_id": s.enrolment_id,
            "campaign_id": s.campaign_id,
            "step": s.step,
            "variant": s.variant,
            "channel": content.channel,
            "template_id": content.template_id,
            "coupon": s.coupon,
            "offer": content.offer.model_dump(mode="json"),
            "call_to_action": content.call_to_action,
            "recipient": _recipient(content.channel, snapshot),
            "subject": subject,
            "body": body,
            "html": html,
            "state": state,
            "error": error,
            "next_attempt_at": wall,
            "created_at": p.now,
            "traceparent": p.trace,
        }


def _recipient(channel: str, snapshot: CustomerSnapshot) -> str | None:
    if channel == "email":
        return snapshot.email
    if channel == "sms":
        return snapshot.phone
    return None


async def custom_sources(conn: AsyncConnection, workspaces: set[str]) -> Mapping[str, Mapping[str, TemplateSource]]:
    """Each workspace's own templates; workspaces without any are absent."""
    found: dict[str, dict[str, TemplateSource]] = {}
    for r in await conn.execute(_CUSTOM, {"ws": sorted(workspaces)}):
        found.setdefault(r.workspace_id, {})[r.template_id] = TemplateSource(
            subject=r.subject, text=r.body, html=r.html
        )
    return found
