"""The lock files agree: pylock.toml (PEP 751), constraints.txt and uv.lock pin exactly the
versions of the hash-checked requirements*.txt that scripts/_setup.sh installs (all written by
scripts/lock)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^ ;\\]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_pins() -> set[tuple[str, str]]:
    pins = set()
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-bench.txt"):
        for line in (ROOT / name).read_text().splitlines():
            if m := PIN.match(line):
                pins.add((_norm(m[1]), m[2]))
    return pins


def test_pylock_pins_exactly_what_the_requirements_install() -> None:
    lock = tomllib.loads((ROOT / "pylock.toml").read_text())
    pylock = {(_norm(p["name"]), p["version"]) for p in lock["packages"]}
    assert lock["lock-version"] == "1.0"
    assert pylock == requirements_pins()
    assert all(p.get("wheels") or p.get("sdist") for p in lock["packages"])  # hashed artifacts


def test_constraints_pin_exactly_what_the_requirements_install() -> None:
    lines = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(PIN.match(line) for line in lines)  # name==version, perhaps with a marker
    pins = {(_norm(m[1]), m[2]) for line in lines if (m := PIN.match(line))}
    assert pins == requirements_pins()


def test_uv_lock_agrees_with_the_requirements() -> None:
    """uv.lock is universal (it also names what other platforms need, such as colorama on
    Windows), so it may hold more packages; every version the requirements pin is in it."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    uv = {(_norm(p["name"]), p["version"]) for p in lock["package"] if "version" in p}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (_norm(project["name"]), project["version"]) in uv
    assert requirements_pins() - uv == set()
