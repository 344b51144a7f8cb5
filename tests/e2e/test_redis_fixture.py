"""The redis_server fixture (conftest.py) gives a working private Redis."""


def test_redis_server_fixture(redis_server):
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.command("PING") == b"+PONG"
    assert redis_server.command("SET", "sluice:test", "héllo") == b"+OK"
    assert redis_server.command("GET", "sluice:test") == "héllo".encode()
    assert redis_server.command("GET", "sluice:missing") == b"$-1"
    assert redis_server.command("CONFIG", "GET", "save").startswith(b"*2")  # no snapshots
