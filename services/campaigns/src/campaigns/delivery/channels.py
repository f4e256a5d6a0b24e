"""The senders behind each channel, and which one a deployment gets.

A channel whose destination is not configured gets `Unconfigured`: its messages fail with a
reason the API shows, and are never reported as sent.
"""

from __future__ import annotations

import httpx

from campaigns.delivery.config import DeliverySettings
from campaigns.delivery.http import CallTaskSender, SmsSender, WebhookSender
from campaigns.delivery.outgoing import MAX_ATTEMPTS, Delivery, Outgoing, Sender, Unconfigured, backoff
from campaigns.delivery.smtp import SmtpSender
from campaigns.domain.model import Channel

__all__ = [
    "MAX_ATTEMPTS",
    "CallTaskSender",
    "Channel",
    "Delivery",
    "Outgoing",
    "Sender",
    "SmsSender",
    "SmtpSender",
    "Unconfigured",
    "WebhookSender",
    "backoff",
    "senders_from",
]


def senders_from(settings: DeliverySettings, client: httpx.AsyncClient) -> dict[Channel, Sender]:
    """One sender per channel; `client` is shared by the HTTP ones and closed by the caller."""
    s = settings
    timeout = s.campaigns_send_timeout_s
    email: Sender = SmtpSender(s) if s.campaigns_smtp_host else Unconfigured("email")
    webhook: Sender = (
        WebhookSender(s.campaigns_webhook_url, s.campaigns_webhook_secret, client, timeout_s=timeout)
        if s.campaigns_webhook_url
        else Unconfigured("webhook")
    )
    sms: Sender = (
        SmsSender(s.campaigns_sms_url, s.campaigns_sms_token, client, timeout_s=timeout)
        if s.campaigns_sms_url
        else Unconfigured("sms")
    )
    call_task: Sender = (
        CallTaskSender(s.campaigns_crm_url, s.campaigns_webhook_secret, client, timeout_s=timeout)
        if s.campaigns_crm_url
        else Unconfigured("call_task")
    )
    return {"email": email, "webhook": webhook, "sms": sms, "call_task": call_task}
