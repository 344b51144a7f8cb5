"""The demo chat page: GET / serves demo/chat.html as built in, and the page works in a real
headless Chromium against the real gateway and worker (tests/browser/chat.test.mjs)."""

import os
import shutil
import signal
import subprocess

import pytest

from conftest import REPO, SLOWDOWN
from e2e_helpers import http_request

BROWSER_TEST = REPO / "tests" / "browser" / "chat.test.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The browser test's time limit for everything it does (start Chromium, three tabs, joins,
# five messages); its own waits are bounded by what is left of it.
BROWSER_BUDGET = 30.0 * SLOWDOWN
EXIT_MARGIN = 15.0  # past the budget, for the browser test's own give-up path and exit


def test_chat_page_served(stack):
    resp = http_request(stack.port, "GET", "/")
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.body == (REPO / "demo" / "chat.html").read_bytes(), "not demo/chat.html as built"
    assert b"/ws/chat/" in resp.body


def test_chat_page_is_get_only(stack):
    resp = http_request(stack.port, "POST", "/", body=b"x")
    assert resp.status == 405
    assert resp.headers["allow"] == "GET"


@pytest.mark.browser
def test_chat_in_browser(stack):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed (scripts/setup.sh installs nodejs and npm)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup.sh installs chromium; "
                    f"CHROMIUM=path names another)")
    if not (REPO / "tests" / "browser" / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("tests/browser/node_modules is missing: run scripts/setup.sh "
                    "(or npm ci --prefix tests/browser)", pytrace=False)
    argv = [node, str(BROWSER_TEST), "--url", f"http://127.0.0.1:{stack.port}/",
            "--budget", str(BROWSER_BUDGET), "--chromium", CHROMIUM]
    # Its own session, so a hung run is stopped with the browser it started.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=BROWSER_BUDGET + EXIT_MARGIN)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"browser test still running {BROWSER_BUDGET + EXIT_MARGIN:.0f} s after "
                    f"its start:\n{output.decode('utf-8', 'replace')}", pytrace=False)
    text = output.decode("utf-8", "replace")
    assert proc.returncode == 0, f"{' '.join(argv)}\nexit code {proc.returncode}\n{text}"
