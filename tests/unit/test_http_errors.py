"""What every service answers when its database refuses a transaction: retry later, or a bug."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from cartera_common.http import install_common_routes


def app_raising(error: BaseException) -> FastAPI:
    app = FastAPI()

    async def ready() -> dict[str, str]:
        return {"database": "ok", "broker": "ok"}

    install_common_routes(app, ready)

    @app.post("/work")
    async def work() -> None:
        raise DBAPIError("UPDATE customer …", None, error)  # as SQLAlchemy wraps what asyncpg raised

    return app


async def post(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/work")


async def test_a_deadlock_answers_503_with_retry_after() -> None:
    response = await post(app_raising(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "retry" in response.json()["detail"]


async def test_a_serialisation_failure_answers_503() -> None:
    response = await post(app_raising(asyncpg.exceptions.SerializationError("could not serialize access")))
    assert response.status_code == 503


async def test_any_other_database_error_stays_a_server_error() -> None:
    response = await post(app_raising(asyncpg.exceptions.UndefinedColumnError("column does not exist")))
    assert response.status_code == 500
