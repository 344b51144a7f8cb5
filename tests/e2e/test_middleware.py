"""Middleware end to end: the demo's /ws/origin-checked (OriginValidator), /whoami and
/ws/whoami (RequestIdMiddleware(CookieMiddleware(AuthMiddleware(…)))) through the real
gateway and worker."""

import json
import re

import pytest

from e2e_helpers import handshake_status, http_request, recv, run, wait_until, ws_connect

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


# The demo's policy: localhost, 127.0.0.1, [::1] (any port), https://allowed.example (port
# 443 only) and .trusted.example (the domain and its subdomains); no missing or null origin.
@pytest.mark.parametrize(
    "origin, status",
    [
        ("https://evil.example", 403),
        ("http://allowed.example", 403),  # the pattern names https
        ("https://allowed.example:8443", 403),  # and its default port
        ("https://trusted.example.evil.example", 403),
        ("null", 403),
        (None, 403),
        ("https://allowed.example", 101),
        ("https://trusted.example", 101),
        ("https://chat.trusted.example:8443", 101),
        ("http://127.0.0.1:1234", 101),
        ("http://localhost", 101),
    ],
)
def test_origin_checked_websocket(stack, origin, status):
    assert run(handshake_status(stack.port, "/ws/origin-checked", origin=origin)) == status


def test_origin_admitted_websocket_works_and_other_routes_take_any_origin(stack):
    async def main():
        async with ws_connect(stack.port, "/ws/origin-checked",
                              origin="https://allowed.example") as ws:
            await ws.send("hi")
            assert await recv(ws) == "hi"
        # Routes without a validator are unchanged: the chat page's browser test and the
        # origin-less clients of the other tests rely on that.
        async with ws_connect(stack.port, "/ws/echo", origin="https://evil.example") as ws:
            await ws.send("still open")
            assert await recv(ws) == "still open"

    run(main())


def test_whoami_resolves_the_user_from_a_cookie_or_a_bearer_token(stack):
    anonymous = http_request(stack.port, "GET", "/whoami")
    assert anonymous.status == 200, anonymous
    body = json.loads(anonymous.body)
    assert body["user"] is None
    assert body["cookies"] == {}

    by_cookie = http_request(stack.port, "GET", "/whoami",
                             headers=[("Cookie", 'theme="dark"; demo_user=ann'),
                                      ("Cookie", "demo_user=shadowed; lang=fr")])
    assert by_cookie.status == 200, by_cookie
    body = json.loads(by_cookie.body)
    assert body["user"] == {"name": "ann"}
    assert body["cookies"] == {"theme": "dark", "demo_user": "ann", "lang": "fr"}

    by_token = http_request(stack.port, "GET", "/whoami",
                            headers=[("Authorization", "Bearer bob")])
    assert json.loads(by_token.body)["user"] == {"name": "bob"}


def test_whoami_refusal_is_401_with_a_challenge_and_403_for_websocket(stack):
    refused = http_request(stack.port, "GET", "/whoami",
                           headers=[("Authorization", "Bearer not a name!")])
    assert refused.status == 401, refused
    assert refused.headers.get("WWW-Authenticate") == 'Bearer realm="sluice-demo"'
    # Refused by the inner middleware, still named by the outer one.
    assert REQUEST_ID.fullmatch(refused.headers.get("X-Request-Id", "")), refused.headers

    status = run(handshake_status(stack.port, "/ws/whoami",
                                  extra_headers=[("Cookie", "demo_user=bad/name")]))
    assert status == 403


def test_request_id_is_taken_or_made_and_sent_back(stack):
    given = http_request(stack.port, "GET", "/whoami", headers=[("X-Request-Id", "e2e-req.1")])
    assert given.headers.get("X-Request-Id") == "e2e-req.1"
    assert json.loads(given.body)["request_id"] == "e2e-req.1"

    made = []
    for headers in ([], [("X-Request-Id", "has space")], [("X-Request-Id", "x" * 129)]):
        response = http_request(stack.port, "GET", "/whoami", headers=headers)
        echoed = response.headers.get("X-Request-Id", "")
        assert REQUEST_ID.fullmatch(echoed), (headers, echoed)
        assert json.loads(response.body)["request_id"] == echoed
        made.append(echoed)
    assert len(set(made)) == 3


def test_websocket_gets_user_and_request_id(stack):
    async def main():
        async with ws_connect(stack.port, "/ws/whoami",
                              extra_headers=[("Cookie", "demo_user=cy"),
                                             ("X-Request-Id", "ws-e2e-7")]) as ws:
            assert ws.response_headers.get("X-Request-Id") == "ws-e2e-7"
            body = json.loads(await recv(ws))
            assert body["user"] == {"name": "cy"}
            assert body["request_id"] == "ws-e2e-7"

    run(main())


def test_request_id_names_the_connection_in_the_worker_log(stack):
    failed = http_request(stack.port, "GET", "/whoami/fail",
                          headers=[("X-Request-Id", "e2e-logged-42")])
    assert failed.status == 500, failed
    wait_until(lambda: "request e2e-logged-42) failed" in stack.worker.stderr_path.read_text(),
               timeout=5, what="the worker's error line naming the request id")
