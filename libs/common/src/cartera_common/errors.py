"""Which failures are worth retrying and which mean the message itself is bad."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# SQLSTATE classes: 08 connection, 40 serialization/deadlock, 53 resources, 57 operator intervention.
_TRANSIENT_SQLSTATE = ("08", "40", "53", "57")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError | asyncio.TimeoutError | ConnectionError | KafkaError):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return _transient_sqlstate(exc.orig) or _transient_sqlstate(getattr(exc.orig, "__cause__", None))
    # The hottest reads go straight through asyncpg, whose errors carry their SQLSTATE themselves:
    # a deadlock there is as worth retrying as one behind SQLAlchemy.
    return _transient_sqlstate(exc)


def _transient_sqlstate(exc: object) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    return bool(sqlstate) and str(sqlstate).startswith(_TRANSIENT_SQLSTATE)
