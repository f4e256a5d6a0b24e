"""Where the campaigns service delivers messages: read from the environment at start-up."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DeliverySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    campaigns_smtp_host: str | None = Field(
        default=None, description="SMTP server for the email channel; unset, email is not delivered."
    )
    campaigns_smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP server port.")
    campaigns_smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none: plain; starttls: upgrade after connecting; tls: TLS from the start."
    )
    campaigns_smtp_user: str | None = Field(default=None, description="SMTP login; unset, no AUTH.")
    campaigns_smtp_password: str | None = Field(default=None, description="SMTP password.")
    campaigns_smtp_connections: int = Field(
        default=4, ge=1, le=64, description="Persistent SMTP connections a batch is spread over."
    )
    campaigns_mail_from: str = Field(
        default="Cartera <winback@cartera.local>", description="The From header and envelope sender."
    )
    campaigns_webhook_url: str | None = Field(
        default=None, description="Where `webhook` channel messages are POSTed; unset, they are not delivered."
    )
    campaigns_webhook_secret: str = Field(
        default="change-me", description="HMAC key for X-Cartera-Signature on webhook and CRM requests."
    )
    campaigns_sms_url: str | None = Field(default=None, description="The SMS provider's send endpoint.")
    campaigns_sms_token: str | None = Field(default=None, description="Bearer token for the SMS provider.")
    campaigns_crm_url: str | None = Field(default=None, description="Where call tasks are POSTed (the CRM).")
    campaigns_public_url: str = Field(
        default="http://127.0.0.1:8004", description="The service's public base URL, for unsubscribe links."
    )
    campaigns_unsubscribe_secret: str = Field(default="change-me", description="HMAC key that signs unsubscribe links.")
    campaigns_mail_dir: str | None = Field(
        default=None, description="The local SMTP sink's directory, so the API can list the mail it caught."
    )
    campaigns_send_timeout_s: float = Field(default=10, gt=0, description="Timeout for one provider call.")
