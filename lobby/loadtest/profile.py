"""``manage.py loadtest --profile DIR``: py-spy samples of the server processes during each
measured phase, and a summary of where the time went (the flame graph's top frames).

py-spy (the ``bench`` extra) attaches to the running Daphne processes (it needs ptrace: root, or
``kernel.yama.ptrace_scope`` 0). Each phase writes ``<target>-<scenario>-<pid>.txt`` in py-spy's
raw (collapsed-stack) format, which ``flamegraph.pl`` or speedscope draw as a flame graph, and
the command prints the top frames of each: *inclusive* (the share of samples with the function
anywhere on the stack) and *self* (the share with it at the top).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    """The py-spy next to this interpreter (the venv's), else one on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    label: str
    path: Path
    proc: subprocess.Popen[bytes]


class Profiler:
    """Records every server process of a target between ``start`` and ``stop``."""

    def __init__(self, out_dir: Path, *, rate: int = 250) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: pip install 'anteroom[bench]'")
        self.exe, self.out_dir, self.rate = exe, out_dir, rate
        out_dir.mkdir(parents=True, exist_ok=True)
        self.running: list[Recording] = []
        self.done: list[Recording] = []

    def start(self, label: str, pids: list[int]) -> None:
        for pid in pids:
            path = self.out_dir / f"{label}-{pid}.txt"
            cmd = [self.exe, "record", "--pid", str(pid), "--rate", str(self.rate)]
            cmd += ["--format", "raw", "--output", str(path), "--nonblocking", "--threads"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.running.append(Recording(label, path, proc))

    def stop(self) -> list[Recording]:
        stopped, self.running = self.running, []
        for rec in stopped:
            if rec.proc.poll() is None:
                rec.proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        for rec in stopped:
            try:
                rec.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                rec.proc.kill()
                rec.proc.wait()
        self.done += stopped
        return stopped


def parse(text: str) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (``frame;frame;frame count``, root first) -> sample counts."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(_short(f) for f in stack.split(";") if not f.startswith("thread ("))
        if frames:
            stacks[frames] += int(count)
    return stacks


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "/lib/python3.", str(Path(__file__).resolve().parents[2])):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker.startswith("/lib/python3."):
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    return f"{m['func']} ({path.lstrip('/')})"


@dataclass
class Top:
    frame: str
    inclusive: float  # share of all samples, 0..1
    self_share: float


def top_frames(stacks: Counter[tuple[str, ...]], n: int = 15) -> tuple[int, list[Top], list[Top]]:
    """(samples, top n by inclusive share, top n by self share)."""
    total = sum(stacks.values())
    inclusive: Counter[str] = Counter()
    selfs: Counter[str] = Counter()
    for frames, count in stacks.items():
        for f in dict.fromkeys(frames):  # once per stack, in stack order (stable ties)
            inclusive[f] += count
        selfs[frames[-1]] += count
    if not total:
        return 0, [], []

    def row(f: str) -> Top:
        return Top(f, inclusive[f] / total, selfs[f] / total)

    return (
        total,
        [row(f) for f, _ in inclusive.most_common(n)],
        [row(f) for f, _ in selfs.most_common(n)],
    )


def summary(recordings: list[Recording], n: int = 15) -> str:
    """The top frames of each recorded phase (all processes of a phase summed)."""
    by_label: dict[str, Counter[tuple[str, ...]]] = {}
    for rec in recordings:
        try:
            text = rec.path.read_text()
        except OSError:
            continue
        by_label.setdefault(rec.label, Counter()).update(parse(text))
    out = []
    for label, stacks in by_label.items():
        total, inc, own = top_frames(stacks, n)
        out.append(f"-- profile {label}: {total} samples (files in {recordings[0].path.parent})")
        out.append("   inclusive  self  frame")
        for t in inc:
            out.append(f"   {t.inclusive:8.1%} {t.self_share:6.1%}  {t.frame}")
        out.append("   top by self time:")
        for t in own:
            out.append(f"   {t.inclusive:8.1%} {t.self_share:6.1%}  {t.frame}")
    return os.linesep.join(out)
