"""Measure the peer-to-peer call (issue 11): admit -> first decoded remote frame, and browser CPU.

    .venv/bin/python -m tests.browser.measure_media [--runs 10] [--cpu-seconds 10]

Real parts: one Daphne process (temp SQLite), Debian's Chromium with the fake camera and
microphone, the real pages. Each run: a fresh room; the host is in the call on the dashboard; a
guest knocks from the guest page; the host clicks Admit (t0, the page's clock); t1 is when the
guest page first shows the host's video (a remote ``<video>`` with ``videoWidth > 0``, polled
every 10 ms). All pages share one machine clock. Then a 3-person call (host and two guests)
runs for ``--cpu-seconds`` and the CPU time of every Chromium process is read from /proc.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.browser.conftest import MEDIA_ARGS, make_server
from tests.browser.test_media_call import SHOWING, SMALL, seeing
from tests.support import CHROMIUM

FIRST_FRAME = """() => {
  window.__firstFrame = null;
  const self = () => window.anteroomCall && window.anteroomCall.room.self.participant_id;
  const tick = setInterval(() => {
    for (const t of document.querySelectorAll('#call-tiles .tile[data-kind=cam]')) {
      if (t.dataset.participantId !== self() && t.querySelector('video').videoWidth > 0) {
        window.__firstFrame = Date.now();
        clearInterval(tick);
        return;
      }
    }
  }, 10);
}"""


def _browser_pids(marker: str) -> list[int]:
    """Our Chromium (the process launched with ``marker``) and all its descendants."""
    parent: dict[int, int] = {}
    root = None
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        parent[int(d.name)] = int(stat[1])
        if marker.encode() in cmd and root is None:
            root = int(d.name)
    if root is None:
        return []
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sorted(tree)


def _cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


async def _context(browser: Any) -> Any:
    ctx = await browser.new_context(viewport=SMALL)
    await ctx.grant_permissions(["camera", "microphone"])
    ctx.set_default_timeout(20_000)
    return ctx


async def _host(browser: Any, server: Any, room: str) -> Any:
    ctx = await _context(browser)
    page = await ctx.new_page()
    await page.goto(f"{server.base}/r/{room}/dashboard/?t={server.owner_token(room)}")
    await page.wait_for_selector("html[data-live=on]")
    await page.get_by_role("button", name="Join call").click()
    await page.wait_for_selector("html[data-call=on]")
    return page


async def _guest(browser: Any, server: Any, room: str, name: str) -> Any:
    ctx = await _context(browser)
    page = await ctx.new_page()
    await page.goto(f"{server.base}/r/{room}/")
    await page.wait_for_selector("html[data-ready='1']")
    await page.get_by_label("Your name").fill(name)
    await page.get_by_role("button", name="Knock to enter").click()
    await page.wait_for_selector("html[data-state=waiting]")
    return page


async def _admit(host: Any, guest: Any, name: str) -> float:
    await guest.evaluate(FIRST_FRAME)
    button = host.get_by_role("button", name=f"Admit {name}")
    await button.wait_for()
    t0 = await host.evaluate("Date.now()")
    await button.click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        t1 = await guest.evaluate("window.__firstFrame")
        if t1:
            return float(t1 - t0)
        await asyncio.sleep(0.05)
    raise TimeoutError("no remote frame within 30 s")


async def measure(runs: int, cpu_seconds: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    tmp = Path(tempfile.mkdtemp(prefix="anteroom-media-"))
    server = make_server(tmp, "measure")
    try:
        async with async_playwright() as pw:
            marker = f"--anteroom-measure={secrets.token_hex(4)}"  # finds our processes
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[*MEDIA_ARGS, marker])
            samples = []
            for i in range(runs):
                room = server.room(f"measure-{i}-{secrets.token_hex(3)}")
                host = await _host(browser, server, room)
                guest = await _guest(browser, server, room, "Ann")
                samples.append(await _admit(host, guest, "Ann"))
                await host.context.close()
                await guest.context.close()
            # A 3-person call for the CPU figure.
            room = server.room(f"measure-cpu-{secrets.token_hex(3)}")
            host = await _host(browser, server, room)
            pages = [host]
            for name in ("Ann", "Bob"):
                g = await _guest(browser, server, room, name)
                await _admit(host, g, name)
                pages.append(g)
            ids = [await p.evaluate("window.anteroomCall.room.self.participant_id") for p in pages]
            for p, me in zip(pages, ids, strict=True):
                others = [i for i in ids if i != me]
                check = seeing(p, others)
                deadline = time.monotonic() + 30
                while not await check():
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"3-person call not up: {await p.evaluate(SHOWING)}")
                    await asyncio.sleep(0.2)
            pids = _browser_pids(marker)
            c0, w0 = _cpu_seconds(pids), time.monotonic()
            await asyncio.sleep(cpu_seconds)
            c1, w1 = _cpu_seconds(pids), time.monotonic()
            await browser.close()
    finally:
        server.stop()
    samples.sort()
    return {
        "admit_to_first_remote_frame_ms": {
            "runs": runs,
            "p50": round(statistics.median(samples)),
            "min": round(samples[0]),
            "max": round(samples[-1]),
            "samples": [round(s) for s in samples],
        },
        "three_person_call_browser_cpu_cores": round((c1 - c0) / (w1 - w0), 2),
        "cpu_window_s": cpu_seconds,
        "chromium_processes": len(pids),
        "cores_on_machine": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.runs, args.cpu_seconds)), indent=2))


if __name__ == "__main__":
    main()
