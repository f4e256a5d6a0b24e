"""A minimal keep-alive HTTP/1.1 GET client: the load generator must cost far less than the server it
measures, and httpx spends about a millisecond of CPU per request on this machine."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class RawClient:
    """One connection, one request at a time; open several for concurrency."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """Retries once on a fresh connection when the server had closed an idle one."""
        try:
            return await self._get(path)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            return await self._get(path)

    async def _get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        body = await self.reader.readexactly(length)
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
            self.reader = self.writer = None


class RawPool:
    """Connections handed out one request at a time, so paced requests never share one."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url, self.headers = base_url, headers
        self.idle: list[RawClient] = []
        self.all: list[RawClient] = []

    async def get(self, path: str) -> tuple[int, bytes]:
        client = self.idle.pop() if self.idle else self._new()
        try:
            result = await client.get(path)
        except BaseException:
            await client.close()
            self.all.remove(client)
            raise
        self.idle.append(client)
        return result

    def _new(self) -> RawClient:
        client = RawClient(self.base_url, self.headers)
        self.all.append(client)
        return client

    async def close(self) -> None:
        for c in self.all:
            await c.close()
