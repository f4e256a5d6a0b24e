"""Refitting a workspace on a real PostgreSQL: fits stored with diagnostics, every buyer scored,
scores published once, a past calibration end checked against what came after."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera.stack import Servers
from cartera_common.clock import SettableClock
from cartera_common.consumer import claim
from cartera_common.db import create_engine
from cartera_common.events import Envelope
from cartera_common.settings import DatabaseSettings
from scoring.handlers import Handlers
from scoring.refit import refit
from scoring.tables import model_fit, plumbing, score

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)

HANDLERS = Handlers(SettableClock(NOW))


@pytest.fixture(scope="module")
async def engine(servers: Servers) -> AsyncIterator[AsyncEngine]:
    url = await asyncio.to_thread(servers.migrated_database)
    engine = create_engine(DatabaseSettings(database_url=url), schema="scoring")
    yield engine
    await engine.dispose()


def buyers(ws: str, n: int, seed: int) -> list[Envelope]:
    """Customers who buy at their own rate until they silently leave, each around their own basket
    size: what BG/NBD and Gamma-Gamma describe."""
    rng = random.Random(seed)
    out = []
    for c in range(n):
        day, rate, leave = rng.uniform(0, 300), rng.uniform(0.01, 0.1), rng.uniform(0.05, 0.4)
        spend = rng.gammavariate(4, 12)  # each customer's own typical basket
        k = 0
        while day < 365:
            at = START + timedelta(days=day)
            out.append(Envelope(event_id=str(uuid.uuid4()), type="order_completed", workspace_id=ws,
                                customer_id=f"c{c}", occurred_at=at, received_at=at,
                                payload={"order_id": f"c{c}-{k}", "amount": str(round(rng.gammavariate(6, spend / 6), 2))}))  # fmt: skip
            k += 1
            if rng.random() < leave:
                break
            day += rng.expovariate(rate)
    return out


async def consume(engine: AsyncEngine, events: list[Envelope]) -> None:
    async with engine.begin() as conn:
        await HANDLERS.apply_events(conn, await claim(conn, "events", events, outcome="applied"))


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def test_a_refit_stores_both_models_and_scores_every_buyer_once(engine: AsyncEngine) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    await consume(engine, buyers(ws, 400, seed=1))
    done = await refit(engine, ws, as_of=NOW, now=NOW)
    assert done.customers == 400 and done.converged and done.gamma_gamma_fit_id is not None
    fits = await rows(engine, select(model_fit).where(model_fit.c.workspace_id == ws))
    assert {f["kind"] for f in fits} == {"bgnbd", "gamma_gamma"}
    assert all(f["converged"] and f["customers"] > 0 and set(f["params"]) for f in fits)
    scores = await rows(engine, select(score).where(score.c.workspace_id == ws))
    assert len(scores) == 400
    assert all(0 <= s["p_alive"] <= 1 and s["expected_30"] <= s["expected_90"] <= s["expected_365"] for s in scores)
    assert any(s["fallback"] for s in scores) and any(not s["fallback"] for s in scores)
    assert all(s["expected_order_value"] and s["expected_order_value"] > 0 for s in scores)
    outbox = plumbing.outbox
    sent = await rows(engine, select(outbox.c.message_id).where(outbox.c.workspace_id == ws))
    assert len(sent) == done.published == 400

    again = await refit(engine, ws, as_of=NOW, now=NOW)
    assert again.published == 0  # the same data gives the same P(alive): nothing to tell
    assert len(await rows(engine, select(outbox.c.message_id).where(outbox.c.workspace_id == ws))) == 400


async def test_a_past_calibration_end_is_checked_against_the_purchases_after_it(engine: AsyncEngine) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    await consume(engine, buyers(ws, 400, seed=2))
    done = await refit(engine, ws, as_of=NOW - timedelta(days=120), now=NOW)
    assert done.holdout is not None and done.holdout["days"] == 120
    assert done.holdout["actual"] > 0 and done.holdout["predicted"] > 0
    assert done.customers < 400  # customers whose first order came after the calibration end are not fitted


async def test_a_workspace_without_orders_cannot_be_fitted(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="no orders"):
        await refit(engine, "w-" + uuid.uuid4().hex[:8], as_of=NOW, now=NOW)
