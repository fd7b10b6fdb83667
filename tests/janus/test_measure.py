"""Figures for docs/deployment.md "Media server (Janus)": three Chromium peers through Janus
and in a bare full mesh on this machine. Prints them; asserts only that media flowed (timings
are measured, not asserted). Run:

    scripts/netns-run pytest -q -s -m "janus and slow" tests/janus/test_measure.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import pytest

from lobby.media.janus import JanusBackend

from .conftest import Janus
from .test_backend import config_for
from .test_engine_media import FULL, MUTED, inbound, until

pytestmark = [
    pytest.mark.janus,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="session"),
]
TICK = os.sysconf("SC_CLK_TCK")
PEERS = ("p1", "p2", "p3")


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK  # ppid, utime+stime


def _tree_cpu(root: int, name: str) -> float:
    """CPU seconds used so far by the processes under ``root`` whose name contains ``name``."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        got = _stat(int(entry))
        if got is None:
            continue
        parents[int(entry)], cpu[int(entry)] = got
        try:
            names[int(entry)] = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            names[int(entry)] = ""

    def under(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(c for pid, c in cpu.items() if name in names.get(pid, "") and under(pid))


async def cores(name: str, root: int, seconds: float = 10.0) -> float:
    before = _tree_cpu(root, name)
    await asyncio.sleep(seconds)
    return (_tree_cpu(root, name) - before) / seconds


async def test_three_peers_janus_vs_mesh(janus: Janus, media_page, harness: str):
    backend = JanusBackend(
        config_for(janus, reconcile_interval=1.0),
        on_recovered=lambda r: None,
        permissions_source="applied",
    )
    room = "measure-room"
    try:
        await asyncio.to_thread(backend.apply, room, dict.fromkeys(PEERS, FULL))
        pages = {}
        for pid in PEERS:
            page = await media_page()
            await page.goto(harness)
            await page.wait_for_function("typeof window.start === 'function'")
            pages[pid] = page
        # admit -> first decoded frame: from the server's after-commit calls (apply, join_info)
        # to the newcomer decoding a frame of someone already in the call
        firsts = []
        for pid in PEERS:
            t0 = time.monotonic()
            sfu = await asyncio.to_thread(backend.join_info, pid, room)
            await asyncio.to_thread(backend.apply, room, dict.fromkeys(PEERS, FULL))
            await pages[pid].evaluate("(sfu) => start(sfu)", sfu)
            if pid != PEERS[0]:
                await until(lambda p=pages[pid]: _any_frame(p, PEERS[0]), timeout=20, step=0.02)
                firsts.append(time.monotonic() - t0)
        for pid, page in pages.items():
            for other in PEERS:
                if other != pid:
                    await until(lambda p=page, o=other: _any_frame(p, o), timeout=20)
        await asyncio.sleep(3)  # settle
        janus_cpu = await cores("janus", janus.proc.pid if janus.proc else 0)
        sfu_browser = await cores("chrom", os.getpid())

        # "mute everyone" -> silence at the receivers (last byte growth seen, 20 ms polling)
        silences = []
        for _ in range(3):
            t0 = time.monotonic()
            await asyncio.to_thread(backend.apply, room, {"p1": FULL, "p2": MUTED, "p3": MUTED})
            silences.append(await _silence_after(pages["p1"], ("p2", "p3"), t0))
            await asyncio.to_thread(backend.apply, room, dict.fromkeys(PEERS, FULL))
            await until(lambda: _audio_flows(pages["p1"], "p2"), timeout=10)
        for page in pages.values():
            await page.evaluate("engine.close()")
        await asyncio.sleep(2)

        # the same three pages in a bare full mesh
        for a_i, a in enumerate(PEERS):
            for b in PEERS[a_i + 1 :]:
                offer = await pages[a].evaluate("(o) => meshOffer(o)", b)
                answer = await pages[b].evaluate("([o, s]) => meshAnswer(o, s)", [a, offer])
                await pages[a].evaluate("([o, s]) => meshDone(o, s)", [b, answer])
        for page in pages.values():
            await until(lambda p=page: _mesh_frames(p), timeout=20)
        await asyncio.sleep(3)
        mesh_browser = await cores("chrom", os.getpid())
    finally:
        backend.stop()

    print(
        "\n3 peers, 320x240 fake camera + microphone, this 2-core machine:"
        f"\n  admit -> first decoded frame (backend calls + ICE/DTLS + decode): "
        f"{', '.join(f'{x * 1000:.0f}' for x in firsts)} ms"
        f"\n  mute everyone -> silence at the receiver: "
        f"p50 {statistics.median(silences) * 1000:.0f} ms (runs: "
        f"{', '.join(f'{x * 1000:.0f}' for x in silences)} ms)"
        f"\n  Janus CPU: {janus_cpu:.3f} cores"
        f"\n  browsers (3 pages, one Chromium) through Janus: {sfu_browser:.2f} cores"
        f"\n  browsers (3 pages, one Chromium) in a full mesh: {mesh_browser:.2f} cores"
    )
    assert firsts and all(s < 5 for s in silences)


async def _any_frame(page, sender: str) -> bool:
    return (await inbound(page, "video", sender))["framesDecoded"] > 0


async def _audio_flows(page, sender: str) -> bool:
    a = (await inbound(page, "audio", sender))["bytesReceived"]
    await asyncio.sleep(0.3)
    return (await inbound(page, "audio", sender))["bytesReceived"] > a


async def _mesh_frames(page) -> bool:
    a = await page.evaluate("meshFrames()")
    await asyncio.sleep(0.5)
    return await page.evaluate("meshFrames()") > a


async def _silence_after(page, senders: tuple[str, ...], t0: float) -> float:
    """Seconds from ``t0`` to the last growth of inbound audio bytes from ``senders``, once
    they stayed flat for 1.5 s."""
    last = {s: (await inbound(page, "audio", s))["bytesReceived"] for s in senders}
    last_growth = time.monotonic()
    while time.monotonic() - last_growth < 1.5:
        await asyncio.sleep(0.02)
        now = {s: (await inbound(page, "audio", s))["bytesReceived"] for s in senders}
        if any(now[s] > last[s] for s in senders):
            last_growth = time.monotonic()
        last = now
    return last_growth - t0
