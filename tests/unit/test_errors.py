"""Which failures the consumers retry: whether they come through SQLAlchemy or straight from asyncpg."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from cartera_common.errors import is_transient


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        ConnectionResetError(),
    ],
)
def test_a_deadlock_or_a_lost_connection_is_retried_even_from_raw_asyncpg(exc: BaseException) -> None:
    assert is_transient(exc)


def test_the_same_deadlock_behind_sqlalchemy_is_retried() -> None:
    wrapped = DBAPIError("SELECT 1", None, asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
    assert is_transient(wrapped)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax"),
        ValueError("not a number"),
        DBAPIError("SELECT 1", None, asyncpg.exceptions.NumericValueOutOfRangeError("out of range")),
    ],
)
def test_a_bad_message_is_not_retried(exc: BaseException) -> None:
    assert not is_transient(exc)
