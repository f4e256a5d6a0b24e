"""The pages a customer reaches from an email (unsubscribe), and the local mail sink's catch (read key).

The unsubscribe link is signed, so it needs no key: GET shows a confirmation page (mail scanners
follow links, and must not unsubscribe anyone), POST unsubscribes. POST is also RFC 8058's
one-click unsubscribe, which mail clients send from the `List-Unsubscribe-Post` header.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from html import escape

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel

from campaigns import customers, engine
from campaigns.delivery import unsubscribe
from campaigns.engine import Batch
from campaigns.sink import list_mail, read_mail
from cartera_common.access import Principal, require
from cartera_common.events.envelope import derived_envelope
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import CAMPAIGN_OUTCOMES

router = APIRouter()

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; line-height: 1.5">
<h1>{title}</h1>
{body}
</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status)


def _verify(request: Request, token: str) -> tuple[str, str] | None:
    return unsubscribe.verify(request.app.state.settings.campaigns_unsubscribe_secret, token)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, tags=["unsubscribe"], summary="Confirm unsubscribing")
async def confirm_page(token: str, request: Request) -> HTMLResponse:
    if _verify(request, token) is None:
        return _page(
            "Link not recognised", "<p>This unsubscribe link is not valid. It may have been cut short.</p>", 404
        )
    form = (
        "<p>You will get no more messages from us.</p>"
        f'<form method="post" action="/unsubscribe/{escape(token)}">'
        '<button type="submit" name="List-Unsubscribe" value="One-Click">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", form)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, tags=["unsubscribe"], summary="Unsubscribe")
async def do_unsubscribe(token: str, request: Request) -> HTMLResponse:
    """Stops every future message: running enrolments end, queued messages are withheld, no new one starts."""
    found = _verify(request, token)
    if found is None:
        return _page(
            "Link not recognised", "<p>This unsubscribe link is not valid. It may have been cut short.</p>", 404
        )
    now = request.app.state.clock.now()
    async with request.app.state.runtime.engine.begin() as conn:
        await customers.unsubscribe(conn, found, now)
        batch = Batch(request.app.state.composer, now)
        await engine.on_withdrawals(conn, batch, {found: [(now, "all")]})
        # The rest of the system learns it too: the segmenter records the consent as an `unsubscribed` event.
        said = derived_envelope(
            "unsubscribed",
            workspace_id=found[0],
            customer_id=found[1],
            payload={"channel": "all", "reason": "unsubscribe link"},
            at=now,
            source="campaigns",
            identity="unsubscribed",
        )
        await emit(conn, [OutMessage.of(CAMPAIGN_OUTCOMES, said)])
    return _page("You are unsubscribed", "<p>You will get no more messages from us. Sorry to see you go.</p>")


class MailOut(BaseModel):
    id: str
    received_at: datetime
    mail_from: str
    to: str
    subject: str
    message_id: str


def _mail_dir(request: Request) -> str:
    directory: str | None = request.app.state.settings.campaigns_mail_dir
    if not directory:
        raise HTTPException(404, "no local mail sink: CAMPAIGNS_MAIL_DIR is not set (mail goes to a real SMTP server)")
    return directory


@router.get(
    "/mail",
    response_model=list[MailOut],
    tags=["mail sink"],
    summary="What the local SMTP sink caught, newest first",
    description="Only on the embedded default (`make run` without an SMTP server): every email the sequences "
    "sent, kept under `.cartera/mail/`.",
)
async def get_mail(
    request: Request,
    principal: Principal = Depends(require("read")),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> list[MailOut]:
    found = list_mail(_mail_dir(request), limit=limit, offset=offset)
    return [MailOut(**asdict(m)) for m in found]


@router.get(
    "/mail/{mail_id}", response_class=PlainTextResponse, tags=["mail sink"], summary="One caught email, as text"
)
async def get_one_mail(mail_id: str, request: Request, principal: Principal = Depends(require("read"))) -> str:
    found = read_mail(_mail_dir(request), mail_id)
    if found is None:
        raise HTTPException(404, f"no mail {mail_id!r}")
    summary, body = found
    return f"From: {summary.mail_from}\nTo: {summary.to}\nSubject: {summary.subject}\n\n{body}"
