"""A crash or restart of any part loses no accepted event and applies none twice."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from cartera.stack import Servers, Stack
from cartera_common.settings import libpq_url
from tests.integration.orders import Ledger, assert_applied_exactly_once, customer_totals, post, wait_until


@pytest.fixture
def own_stack(servers: Servers, tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own: these tests kill its processes and its broker."""
    with servers.running_stack(tmp_path) as stack:
        yield stack


async def test_killing_the_segmenter_mid_stream_applies_every_event_once(own_stack: Stack) -> None:
    ingest = own_stack.services["ingest"].url
    ledger = Ledger(prefix="kill-" + uuid.uuid4().hex[:6])
    batches = [ledger.batch(i * 50, 50) for i in range(40)]
    done = threading.Event()

    def producer() -> None:
        for b in batches:
            post(ingest, own_stack.keys["write"], b)
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    segmenter = own_stack.services["segmenter"]
    for _ in range(3):
        await asyncio.sleep(1.0)
        segmenter.kill()  # SIGKILL: no drain, no commit, mid-batch
        segmenter.start()
        await asyncio.to_thread(segmenter.wait_ready)
    thread.join()
    assert done.is_set()
    await assert_applied_exactly_once(own_stack.database_url, "default", ledger)


async def test_broker_restart_loses_nothing_posted_before_during_or_after(own_stack: Stack) -> None:
    ingest = own_stack.services["ingest"].url
    key = own_stack.keys["write"]
    ledger = Ledger(prefix="broker-" + uuid.uuid4().hex[:6])
    post(ingest, key, ledger.batch(0, 200))
    await assert_applied_exactly_once(own_stack.database_url, "default", ledger)

    own_stack.stop_broker()  # the embedded broker forgets every topic, message and offset
    post(ingest, key, ledger.batch(200, 200))  # 202 means durable: intake does not need the broker
    post(ingest, key, ledger.batch(400, 200))
    own_stack.start_broker()
    post(ingest, key, ledger.batch(600, 200))
    await assert_applied_exactly_once(own_stack.database_url, "default", ledger)


@pytest.fixture
def crashy_stack(servers: Servers, tmp_path: Path) -> Iterator[Stack]:
    """Both services crash at the worst moments: after the database commit, before Kafka learns of it."""
    crashy = {"CARTERA_FAILPOINTS": "consumer.after_db_commit=0.3,relay.after_send=0.3"}
    with servers.running_stack(tmp_path, wait=False, **crashy) as stack:
        yield stack


async def test_crashes_between_commit_and_offset_commit_never_double_apply(crashy_stack: Stack) -> None:
    stack = crashy_stack
    ledger = Ledger(prefix="crashy-" + uuid.uuid4().hex[:6])
    for i in range(20):
        _post_like_a_client(stack, ledger.batch(i * 25, 25))

    async def settled() -> bool:
        _revive(stack)
        return await _matches(stack.database_url, ledger)

    await wait_until(settled, timeout_s=180, what="every event applied once despite crashes")
    assert sum(_restarts.values()) > 0, "the failpoints never fired; the test proved nothing"


_restarts: dict[str, int] = {}


def _post_like_a_client(stack: Stack, events: list[dict[str, object]]) -> None:
    """Retries when ingest is down; the content-derived event ids make the retry harmless."""
    for _ in range(50):
        _revive(stack)
        try:
            post(stack.services["ingest"].url, stack.keys["write"], events)
            return
        except httpx.TransportError:
            continue
    raise AssertionError("ingest never came back")


def _revive(stack: Stack) -> None:
    """Plays the supervisor: restarts whatever crashed until it is ready (it may crash starting)."""
    for svc in stack.services.values():
        for _ in range(50):
            assert svc.process is not None
            if svc.process.poll() is not None:
                _restarts[svc.name] = _restarts.get(svc.name, 0) + 1
                svc.start()
            try:
                svc.wait_ready()
                break
            except RuntimeError:
                continue


async def _matches(database_url: str, ledger: Ledger) -> bool:
    got = await customer_totals(database_url, "default", ledger.prefix)
    return got == ledger.expected()


async def test_graceful_restart_of_ingest_publishes_its_backlog(own_stack: Stack) -> None:
    ingest = own_stack.services["ingest"]
    ledger = Ledger(prefix="ingest-" + uuid.uuid4().hex[:6])
    post(ingest.url, own_stack.keys["write"], ledger.batch(0, 300))
    ingest.kill()
    ingest.start()
    await asyncio.to_thread(ingest.wait_ready)
    post(ingest.url, own_stack.keys["write"], ledger.batch(300, 100))
    await assert_applied_exactly_once(own_stack.database_url, "default", ledger)


async def test_events_published_but_unconsumed_when_the_broker_dies_are_republished(own_stack: Stack) -> None:
    ingest = own_stack.services["ingest"].url
    segmenter = own_stack.services["segmenter"]
    ledger = Ledger(prefix="lost-" + uuid.uuid4().hex[:6])
    segmenter.stop()  # nobody consumes: what ingest publishes now lives only in the broker
    post(ingest, own_stack.keys["write"], ledger.batch(0, 300))
    await wait_until(
        lambda: _all_published(own_stack.database_url), timeout_s=30, what="the relay to publish everything"
    )
    own_stack.stop_broker()
    own_stack.start_broker()
    segmenter.start()
    await asyncio.to_thread(segmenter.wait_ready)
    await assert_applied_exactly_once(own_stack.database_url, "default", ledger)


async def _all_published(database_url: str) -> bool:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        backlog = await conn.fetchval(
            "SELECT count(*) FROM ingest.outbox o, ingest.relay_state r "
            "WHERE r.relay = 'ingest' AND (o.txid, o.id) > (r.txid, r.last_id)"
        )
        return bool(backlog == 0)
    finally:
        await conn.close()


async def test_a_service_that_lost_its_key_copy_relearns_old_keys_after_the_broker_comes_back_empty(
    own_stack: Stack,
) -> None:
    segmenter = own_stack.services["segmenter"]
    segmenter.stop()
    conn = await asyncpg.connect(libpq_url(own_stack.database_url))
    try:
        # A fresh segmenter database, and key announcements older than the replay window.
        await conn.execute("DELETE FROM segmenter.access_key; DELETE FROM segmenter.inbox WHERE topic = 'access'")
        await conn.execute("UPDATE ingest.outbox SET created_at = now() - interval '3 days' WHERE topic = 'access'")
    finally:
        await conn.close()
    own_stack.stop_broker()
    own_stack.start_broker()
    segmenter.start()
    await asyncio.to_thread(segmenter.wait_ready)

    async def key_known() -> bool:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{segmenter.url}/customers/nobody", auth=(own_stack.keys["read"], ""))
        return r.status_code == 404

    await wait_until(key_known, timeout_s=60, what="the segmenter to relearn the read key")
