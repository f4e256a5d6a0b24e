"""An admin's keys: created, used, revoked, and followed by every service that checks them."""

from __future__ import annotations

import httpx

from cartera.stack import Stack
from tests.e2e.helpers import unique, wait_for_status

Keys = dict[str, str]


def issue(stack: Stack, admin: str, role: str) -> dict[str, str]:
    r = httpx.post(f"{stack.services['ingest'].url}/v1/keys", auth=(admin, ""), json={"role": role})
    assert r.status_code == 201, r.text
    return dict(r.json())


def revoke(stack: Stack, admin: str, prefix: str) -> httpx.Response:
    return httpx.delete(f"{stack.services['ingest'].url}/v1/keys/{prefix}", auth=(admin, ""))


def send_profile(stack: Stack, key: str) -> httpx.Response:
    event = {"type": "profile_updated", "customer_id": unique("k"), "name": "Eva"}
    return httpx.post(f"{stack.services['ingest'].url}/v1/events", auth=(key, ""), json=event)


def read_customer(stack: Stack, key: str) -> httpx.Response:
    return httpx.get(f"{stack.services['segmenter'].url}/customers/nobody", auth=(key, ""))


def test_a_new_write_key_works_until_it_is_revoked(stack: Stack, workspace: Keys) -> None:
    issued = issue(stack, workspace["admin"], "write")
    assert (issued["role"], issued["workspace_id"]) == ("write", workspace["workspace_id"])
    assert issued["key"].startswith(issued["prefix"])
    assert send_profile(stack, issued["key"]).status_code == 202

    assert revoke(stack, workspace["admin"], issued["prefix"]).status_code == 204
    wait_for_status(lambda: send_profile(stack, issued["key"]), lambda status: status == 401)
    assert send_profile(stack, workspace["write"]).status_code == 202  # the other keys still work


def test_the_key_list_shows_prefixes_and_revocations_but_never_keys(stack: Stack, workspace: Keys) -> None:
    issued = issue(stack, workspace["admin"], "write")
    revoke(stack, workspace["admin"], issued["prefix"])
    listed = httpx.get(f"{stack.services['ingest'].url}/v1/keys", auth=(workspace["admin"], ""))
    assert listed.status_code == 200
    by_prefix = {k["prefix"]: k for k in listed.json()}
    assert set(by_prefix) == {workspace[role][:10] for role in ("admin", "write", "read")} | {issued["prefix"]}
    assert by_prefix[issued["prefix"]]["revoked_at"] is not None
    assert by_prefix[workspace["write"][:10]]["revoked_at"] is None
    assert issued["key"] not in listed.text


def test_revoking_an_unknown_or_already_revoked_key_is_not_found(stack: Stack, workspace: Keys) -> None:
    issued = issue(stack, workspace["admin"], "read")
    assert revoke(stack, workspace["admin"], issued["prefix"]).status_code == 204
    assert revoke(stack, workspace["admin"], issued["prefix"]).status_code == 404
    assert revoke(stack, workspace["admin"], "ck_r_nope0").status_code == 404


def test_an_admin_cannot_revoke_another_workspaces_key(stack: Stack, workspace: Keys) -> None:
    foreign = stack.keys["write"]  # the default workspace's write key
    assert revoke(stack, workspace["admin"], foreign[:10]).status_code == 404
    assert send_profile(stack, foreign).status_code == 202


def test_the_segmenter_learns_a_new_read_key_and_its_revocation(stack: Stack, workspace: Keys) -> None:
    issued = issue(stack, workspace["admin"], "read")
    known = wait_for_status(lambda: read_customer(stack, issued["key"]), lambda status: status != 401)
    assert known.status_code == 404  # authorised, and the workspace has no such customer

    assert revoke(stack, workspace["admin"], issued["prefix"]).status_code == 204
    wait_for_status(lambda: read_customer(stack, issued["key"]), lambda status: status == 401)
    assert read_customer(stack, workspace["read"]).status_code == 404


def test_a_write_key_cannot_read_customers_from_the_segmenter(stack: Stack, workspace: Keys) -> None:
    answer = wait_for_status(lambda: read_customer(stack, workspace["write"]), lambda status: status != 401)
    assert answer.status_code == 403


def test_only_the_default_workspace_admin_creates_workspaces(stack: Stack, workspace: Keys) -> None:
    body = {"workspace_id": unique("ws"), "name": "Another shop"}
    r = httpx.post(f"{stack.services['ingest'].url}/v1/workspaces", auth=(workspace["admin"], ""), json=body)
    assert r.status_code == 403
