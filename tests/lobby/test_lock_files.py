"""The lock files agree: pylock.toml (PEP 751) pins exactly the versions of the hash-checked
requirements*.txt that scripts/_setup.sh installs (both written by scripts/lock)."""

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
