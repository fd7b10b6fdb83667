"""Cross-port WebSocket hijacking in a real browser (issue 10 item 1): a page served on another
port of the same host opens ``/ws/rooms/<room>/``; Chromium sends the staff session cookie (the
same site), and the server must refuse the handshake because the Origin is not its own."""

from __future__ import annotations

import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import NewPage, Server, call
from tests.support.servers import manage

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Open the room's socket, ask to join as staff, and report what happened on window.result.
TRY_STAFF_JOIN = """(url) => {
  window.result = null;
  const out = { opened: false, ack: null, code: null };
  const ws = new WebSocket(url);
  ws.onopen = () => { out.opened = true;
                      ws.send(JSON.stringify({ type: 'join', staff: true, rid: 'x' })); };
  ws.onmessage = (e) => { const f = JSON.parse(e.data);
                          if (f.type === 'ack') { out.ack = f; ws.close(); } };
  ws.onclose = (e) => { out.code = e.code; window.result = out; };
}"""


@pytest.fixture
def other_port_page() -> Iterator[str]:
    """A page of ``http://127.0.0.1:<another port>`` (any other site on this host)."""
    html = b"<!doctype html><title>elsewhere</title><p>A page on another port of this host.</p>"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _make_staff(server: Server, username: str, password: str) -> None:
    code = (
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({username!r}, password={password!r}, "
        "is_staff=True)"
    )
    manage("shell", "-c", code, env=server.env)


async def test_a_page_on_another_port_cannot_use_the_staff_session(
    new_page: NewPage, server: Server, room_name: str, other_port_page: str
):
    await call(server.room, room_name)
    username, password = f"ops-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    await call(_make_staff, server, username, password)
    socket_url = server.base.replace("http://", "ws://") + f"/ws/rooms/{room_name}/"

    # A staff user signs in on the server, in this browser.
    page = await new_page(bypass_csp=True)  # so that wait_for_function may evaluate
    await page.goto(f"{server.base}/admin/login/?next=/admin/")
    await page.fill("#id_username", username)
    await page.fill("#id_password", password)
    await page.click("input[type=submit]")
    await page.wait_for_url(f"{server.base}/admin/")

    # Same browser, a page of another port: the handshake (cookie and all) is refused.
    elsewhere = await page.context.new_page()  # (its console shows the refused handshake)
    await elsewhere.goto(other_port_page)
    await elsewhere.evaluate(TRY_STAFF_JOIN, socket_url)
    await elsewhere.wait_for_function("window.result !== null")
    hijack = await elsewhere.evaluate("result")
    assert hijack == {"opened": False, "ack": None, "code": 1006}, json.dumps(hijack)

    # The same script from the server's own origin joins as staff: the session was real.
    await page.goto(f"{server.base}/healthz")
    await page.evaluate(TRY_STAFF_JOIN, socket_url)
    await page.wait_for_function("window.result !== null")
    own = await page.evaluate("result")
    assert own["opened"] and own["ack"]["ok"], json.dumps(own)
