"""The local SMTP sink: catches the campaigns' email in a directory when no real SMTP server is configured.

    python -m campaigns.sink --dir DIR --host 127.0.0.1 --port 2525

Each message becomes one `.eml` file, written to a hidden temporary name and renamed, so a reader
never sees half a message. Names sort by arrival (nanoseconds, then a counter) and carry a safe
form of the Message-ID. The handler does no parsing beyond finding that header, so the sink keeps
up with the sender (about 2,000 messages a second); `list_mail` and `read_mail` parse on demand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import re
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*<?([^>\r\n]*)>?", re.IGNORECASE | re.MULTILINE)
_UNSAFE = re.compile(rb"[^A-Za-z0-9._-]+")
_PLAIN_ADDRESS = re.compile(
    r"^\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+)>(.*)$"
)
_MAIL_ID = re.compile(r"^[0-9]{20}-[0-9]{6}-[A-Za-z0-9._-]{1,80}$")


class MailDir:
    """aiosmtpd handler that stores every message it accepts as DIR/<arrival>-<n>-<message-id>.eml."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()

    def store(self, content: bytes) -> str:
        """Writes one message atomically and returns its id (the file name without `.eml`)."""
        header_end = content.find(b"\r\n\r\n")
        found = _MESSAGE_ID.search(content, 0, header_end if header_end >= 0 else len(content))
        safe = _UNSAFE.sub(b"_", found.group(1)).decode("ascii")[:80] if found else ""
        mail_id = f"{time.time_ns():020d}-{next(self._counter) % 1_000_000:06d}-{safe or 'no-id'}"
        tmp = self.directory / f".{mail_id}.tmp"
        # Plain blocking writes: a few tens of microseconds, cheaper than a hop to a thread. No fsync:
        # this is a development sink, and losing the last messages in a power cut is acceptable.
        with open(tmp, "wb") as f:
            f.write(content)
        os.replace(tmp, self.directory / f"{mail_id}.eml")
        return mail_id

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        try:
            mail_id = self.store(content)
        except OSError as e:
            log.error("cannot store a message: %s", e)
            return "451 Requested action aborted: cannot store the message"
        return f"250 OK queued as {mail_id}"


class SinkSMTP(SMTP):
    """aiosmtpd's server, reading DATA in bulk rather than line by line.

    aiosmtpd awaits every line of a message (about 60 for a win-back email) and runs the email
    package's full RFC 5322 parser on every address: together two thirds of the sink's time,
    which held it under 2,000 messages a second. Here a message is read in one go up to the
    terminating dot, and plain `<local@domain>` addresses are matched by a regular expression
    (anything else still goes to aiosmtpd's parser). This leans on aiosmtpd 1.4's `_reader` and
    `_getaddr`, so the dependency is pinned below 1.5; `handle_DATA` is called directly (the sink
    has only `MailDir`).
    """

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_ADDRESS.match(arg)
        if plain is None or (self.local_part_limit and plain.group(1).index("@") > self.local_part_limit):
            return super()._getaddr(arg)
        return plain.group(1), plain.group(2)

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if self.envelope is None or not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        read = await self._read_data()
        if read is None:  # the client went away mid-message
            return
        data, oversized = read
        envelope, self.envelope = self.envelope, Envelope()
        if oversized:
            await self.push("552 Error: Too much mail data")
            return
        # RFC 5321 4.5.2: the client doubled every leading dot.
        content = (data[1:] if data.startswith(b".") else data).replace(b"\r\n..", b"\r\n.")
        envelope.content = envelope.original_content = content
        await self.push(await self.event_handler.handle_DATA(self, self.session, envelope))

    async def _read_data(self) -> tuple[bytes, bool] | None:
        """The message up to the line holding a lone dot, with its last CRLF, and whether it was over the
        size limit (then only its edges are kept); None on end of stream."""
        reader: asyncio.StreamReader = self._reader
        buf = bytearray()
        oversized = False
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return None
            start = max(0, len(buf) - 4)
            buf += chunk
            if start == 0 and buf.startswith(b".\r\n"):
                end, rest = 0, 3  # an empty message
            else:
                end = buf.find(b"\r\n.\r\n", start)
                end, rest = (end + 2, end + 5) if end >= 0 else (-1, -1)
            if end >= 0:
                if rest < len(buf):  # a pipelining client's next command: put it back for the command loop
                    reader.feed_data(bytes(buf[rest:]))
                return bytes(buf[:end]), oversized
            if self.data_size_limit and len(buf) > self.data_size_limit:
                # Read on to the end of the message, keeping only what might hold the terminator.
                oversized = True
                del buf[4 : len(buf) - 4]


@dataclass(frozen=True, slots=True)
class MailSummary:
    id: str
    received_at: datetime
    mail_from: str
    to: str
    subject: str
    message_id: str


def _summary(mail_id: str, headers: Any) -> MailSummary:
    received = datetime.fromtimestamp(int(mail_id[:20]) / 1e9, tz=UTC)
    return MailSummary(
        id=mail_id,
        received_at=received,
        mail_from=str(headers.get("From", "")),
        to=str(headers.get("To", "")),
        subject=str(headers.get("Subject", "")),
        message_id=str(headers.get("Message-ID", "")),
    )


def _mail_ids(directory: Path) -> list[str]:
    try:
        names = [e.name for e in os.scandir(directory) if e.name.endswith(".eml") and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    return sorted((n[:-4] for n in names if _MAIL_ID.match(n[:-4])), reverse=True)


def list_mail(directory: str | Path, limit: int = 50, offset: int = 0) -> list[MailSummary]:
    """The newest messages first; only the page asked for is read, and of it only the headers."""
    directory = Path(directory)
    parser = BytesHeaderParser(policy=policy.default)
    out = []
    for mail_id in _mail_ids(directory)[offset : offset + limit]:
        try:
            with open(directory / f"{mail_id}.eml", "rb") as f:
                out.append(_summary(mail_id, parser.parse(f)))
        except FileNotFoundError:  # removed since the listing
            continue
    return out


def read_mail(directory: str | Path, mail_id: str) -> tuple[MailSummary, str] | None:
    """One message's summary and its text body (the HTML when it has no text); None if there is no such mail."""
    if not _MAIL_ID.match(mail_id):  # the id names a file: nothing but the sink's own names, no paths
        return None
    try:
        with open(Path(directory) / f"{mail_id}.eml", "rb") as f:
            message = BytesParser(policy=policy.default).parse(f)
    except FileNotFoundError:
        return None
    assert isinstance(message, EmailMessage)  # what policy.default parses to
    body = message.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return _summary(mail_id, message), str(text).replace("\r\n", "\n")  # stored as sent, shown as text


async def serve(directory: str | Path, host: str, port: int, stop: asyncio.Event) -> None:
    """Runs the sink until `stop` is set."""
    handler = MailDir(directory)
    loop = asyncio.get_running_loop()
    # hostname given: aiosmtpd would otherwise call socket.getfqdn() for every connection.
    server = await loop.create_server(
        lambda: SinkSMTP(handler, hostname="cartera-sink", data_size_limit=10 * 2**20, loop=loop), host, port
    )
    log.info("SMTP sink on %s:%s, writing to %s", host, port, handler.directory)
    async with server:
        await stop.wait()


async def _main(directory: str, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(directory, host, port, stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m campaigns.sink", description="A local SMTP sink for Cartera.")
    parser.add_argument("--dir", required=True, help="where the .eml files go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(_main(args.dir, args.host, args.port))


if __name__ == "__main__":
    main()
