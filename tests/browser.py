"""Headless Chromium driven over the DevTools protocol, for tests that need a real browser.

``--dump-dom`` takes one snapshot at a moment Chromium picks (the load event, or the end of a
virtual-time budget). A WebSocket message is not something virtual time waits for, so a
snapshot can come a few milliseconds before the echo lands, and on a loaded CI machine it did.
:func:`wait_dom` instead polls the live DOM until the test's condition holds or a deadline
(in units of tests.helpers.UNIT) passes, so a slow machine makes the test slower, not wrong.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable

from tests.helpers import UNIT, clean_env, require_tool, stop, wait_for

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-default-browser-check"]


def _devtools_port(profile: Path, proc: subprocess.Popen, timeout: float) -> int:
    """The port Chromium chose for --remote-debugging-port=0 (it writes it to DevToolsActivePort)."""
    marker = profile / "DevToolsActivePort"

    def port() -> int:
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode} before DevTools was up")
        return int(marker.read_text().splitlines()[0])

    return wait_for(port, what="chromium to write its DevTools port", timeout=timeout,
                    ignore=(FileNotFoundError, IndexError, ValueError))


def _page_socket_url(port: int, timeout: float) -> str:
    def page() -> str | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10 * UNIT) as resp:
            targets = json.load(resp)
        pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
        return pages[0]["webSocketDebuggerUrl"] if pages else None

    return wait_for(page, what="chromium's page target", timeout=timeout)


class _DevTools:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, timeout: float = 20 * UNIT, **params: object) -> dict:
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            reply = json.loads(self.ws.recv(timeout=timeout))
            if reply.get("id") == mine:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def dom(self) -> str:
        result = self.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                           returnByValue=True)
        return result.get("result", {}).get("value") or ""


def wait_dom(url: str, home: Path, until: Callable[[str], bool], extra: list[str] = (),
             timeout: float = 45 * UNIT) -> str:
    """Open ``url`` in headless Chromium (HOME=``home``, so ``home/.pki/nssdb`` is its trust
    store) and return the DOM as soon as ``until(dom)`` is true, or the last DOM seen when
    ``timeout`` seconds pass. The caller asserts on what comes back."""
    from websockets.sync.client import connect

    exe = require_tool("chromium", "headless browser test")
    profile = home / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "DevToolsActivePort").unlink(missing_ok=True)
    proc = subprocess.Popen(
        [exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1", *extra, "about:blank"],
        env=clean_env(HOME=str(home)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    seen = [""]
    try:
        port = _devtools_port(profile, proc, timeout)
        with connect(_page_socket_url(port, deadline - time.monotonic()), max_size=None,
                     open_timeout=20 * UNIT) as ws:
            tools = _DevTools(ws)
            tools.call("Page.navigate", url=url)

            def ready() -> bool:
                seen[0] = tools.dom()
                return until(seen[0])

            try:
                wait_for(ready, what=f"the page at {url}", timeout=max(deadline - time.monotonic(), 0), interval=0.1)
            except AssertionError:
                pass  # the caller's assertion on the last DOM says what is missing
    finally:
        stop(proc)  # only the browser we started; it takes its own helpers down
    return seen[0]
