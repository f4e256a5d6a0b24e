"""The `cartera` subcommands, one module per command group; each registers its parsers and their `run`."""

from __future__ import annotations

from types import ModuleType

from cartera.commands import dlq, importing, keys, policy, refit, replay, status, system

GROUPS: tuple[ModuleType, ...] = (system, status, importing, replay, dlq, refit, keys, policy)
