"""Session fixtures: real servers, started by the project itself when none is configured."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

from cartera.stack import Servers, Stack

# Property tests explore the same examples on every run by default, so a red CI run means a change
# broke something, not that a new corner was drawn; `HYPOTHESIS_PROFILE=explore make test` draws new
# ones (and hypothesis prints the failing example to pin).
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Not under /root: the embedded PostgreSQL runs as its own user and must reach its data.
    return tmp_path_factory.mktemp("cartera")


@pytest.fixture(scope="session")
def servers(workdir: Path) -> Iterator[Servers]:
    s = Servers.start(workdir)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def stack(servers: Servers, workdir: Path) -> Iterator[Stack]:
    """Ingest and segmenter running against the session's servers."""
    with servers.running_stack(workdir) as st:
        yield st


@pytest.fixture
def workspace(stack: Stack) -> dict[str, str]:
    """A fresh workspace with admin, write and read keys, so tests never see each other's data."""
    ingest = stack.services["ingest"].url
    ws = "t-" + uuid.uuid4().hex[:10]
    created = httpx.post(
        f"{ingest}/v1/workspaces", auth=(stack.keys["admin"], ""), json={"workspace_id": ws, "name": ws}
    )
    assert created.status_code == 201, created.text
    admin = created.json()["admin_key"]["key"]
    keys = {"workspace_id": ws, "admin": admin}
    for role in ("write", "read"):
        r = httpx.post(f"{ingest}/v1/keys", headers={"Authorization": f"Bearer {admin}"}, json={"role": role})
        assert r.status_code == 201, r.text
        keys[role] = r.json()["key"]
    return keys
