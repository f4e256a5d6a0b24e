"""Keys: how they are presented, stored and checked."""

from __future__ import annotations

import base64

from starlette.requests import Request

from cartera_common.access import Principal, hash_key, key_prefix, new_key, presented_key


def request_with(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_key_is_taken_from_the_basic_user_name_or_a_bearer_token() -> None:
    assert presented_key(request_with(basic("ck_w_abc"))) == "ck_w_abc"
    assert presented_key(request_with(basic("ck_w_abc", "ignored"))) == "ck_w_abc"
    assert presented_key(request_with("Bearer ck_r_xyz")) == "ck_r_xyz"


def test_no_usable_key_is_none() -> None:
    assert presented_key(request_with(None)) is None
    assert presented_key(request_with("Basic !!!not-base64")) is None
    assert presented_key(request_with(basic(""))) is None
    assert presented_key(request_with("Bearer ")) is None


def test_keys_are_random_role_tagged_and_stored_only_as_a_hash() -> None:
    a, b = new_key("write"), new_key("write")
    assert a != b and a.startswith("ck_w_") and len(a) > 30
    assert hash_key(a) != a and len(hash_key(a)) == 64
    assert key_prefix(a) == a[:10]


def test_an_admin_key_can_do_what_write_and_read_keys_can_but_not_the_reverse() -> None:
    admin, write, read = (Principal("w", role, "p") for role in ("admin", "write", "read"))
    assert admin.allows("write") and admin.allows("read") and admin.allows("admin")
    assert write.allows("write") and not write.allows("read") and not write.allows("admin")
    assert read.allows("read") and not read.allows("write")
