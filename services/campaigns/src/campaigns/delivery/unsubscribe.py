"""Signed unsubscribe links: the token names the customer, so the link works without a login or a lookup.

A token is `v1.<workspace>.<customer>.<mac>`, each part base64url without padding, the MAC an
HMAC-SHA256 over the version and both ids. It does not expire: an unsubscribe link in an old
message must keep working. A new version prefix lets the format change without breaking old links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

VERSION = "v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(raw) != text:  # only the canonical spelling: no stray characters, no altered padding bits
        raise ValueError("not canonical base64url")
    return raw


def _mac(secret: str, workspace_id: str, customer_id: str) -> bytes:
    signed = "\x1f".join((VERSION, workspace_id, customer_id)).encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).digest()


def sign(secret: str, workspace_id: str, customer_id: str) -> str:
    """A URL-safe token that only the holder of `secret` can make."""
    parts = (workspace_id.encode(), customer_id.encode(), _mac(secret, workspace_id, customer_id))
    return ".".join((VERSION, *map(_b64, parts)))


def verify(secret: str, token: str) -> tuple[str, str] | None:
    """(workspace_id, customer_id) for a token made with `secret`; None for anything else."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        return None
    try:
        workspace_id, customer_id = _unb64(parts[1]).decode(), _unb64(parts[2]).decode()
        mac = _unb64(parts[3])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # Constant time, so the MAC cannot be guessed a byte at a time from response timings.
    if not hmac.compare_digest(mac, _mac(secret, workspace_id, customer_id)):
        return None
    return workspace_id, customer_id


def link(public_url: str, token: str) -> str:
    """The page (and one-click POST target) that unsubscribes the token's customer."""
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"
