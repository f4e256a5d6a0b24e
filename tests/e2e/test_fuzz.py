"""Schemathesis fuzzes each API from its own OpenAPI: whatever comes in, never a 500."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cartera.stack import Stack

# Paths left out: creating workspaces at random (covered by test_keys) and revoking the very key
# the fuzzer authenticates with.
EXCLUDED = {
    "ingest": ["--exclude-path", "/v1/workspaces", "--exclude-path-regex", "^/v1/keys"],
    "segmenter": [],
    "scoring": [],
    "campaigns": [],
}


@pytest.mark.parametrize("service", list(EXCLUDED))
def test_no_generated_request_gets_a_server_error(stack: Stack, workspace: dict[str, str], service: str) -> None:
    running = stack.services.get(service)
    if running is None or running.process is None or running.process.poll() is not None:
        running = stack.start(service)
    url = running.url
    cli = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(cli),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {workspace['admin']}",
            "--max-examples",
            "40",
            "--seed",
            "1",
            *EXCLUDED[service],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested:" in result.stdout  # it really ran operations
