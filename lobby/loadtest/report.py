"""The load test's summary table (issue 13's layout) and the regression comparison.

``summary_table`` puts each Anteroom target beside the bare relay measured in the same run (the
single-process relay for the embedded back end, the Redis relay for PostgreSQL + Redis), with
their ratio: absolute timings on a shared machine are noisy, ratios much less so.

``compare`` reads a saved report (``--output``) and lists what got worse than it by more than a
margin: every latency, CPU-per-operation, memory and relay-ratio figure of every row present in
both reports, and any increase in ``lost``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (label, scenario, field); ``field`` of the row, lower is better unless listed in HIGHER_BETTER.
SUMMARY_ROWS: list[tuple[str, str, str]] = [
    ("knock 20/s -> entry-requested, p50 ms", "knock20", "p50_ms"),
    ("knock 20/s, p99 ms", "knock20", "p99_ms"),
    ("knock 100/s, p50 ms", "knock100", "p50_ms"),
    ("knock 100/s, p99 ms", "knock100", "p99_ms"),
    ("knock 500/s, p50 ms", "knock500", "p50_ms"),
    ("knock 500/s, p99 ms", "knock500", "p99_ms"),
    ("server CPU per knock (100/s), ms", "knock100", "cpu_ms_per_op"),
    ("storm of N: last entry-requested, ms", "storm", "completion_ms"),
    ("admit-all of N: last joined, ms", "admit_all", "completion_ms"),
    ("create-and-invite: last invitation, ms", "invite", "completion_ms"),
    ("connects per second (per process)", "connects", "per_s_per_process"),
    ("server CPU per connect, ms", "connects", "cpu_ms_per_op"),
    ("idle: waiting guests lost", "idle", "lost"),
    ("idle: KiB per waiting socket", "idle", "kib_per_socket"),
]
HIGHER_BETTER = frozenset({"per_s", "per_s_per_process", "knocks_per_s"})
# Figures compared against a saved report (besides ``lost``).
COMPARED = (
    "p50_ms",
    "p99_ms",
    "max_ms",
    "completion_ms",
    "cpu_ms_per_op",
    "kib_per_socket",
    "per_s",
    "per_s_per_process",
    "x_relay_1p",
    "x_relay_redis",
    "x_cpu",
)
# A latency must also grow by this much (ms) to count: 1.0 -> 1.4 ms is noise, not a regression.
MIN_DELTA_MS = 1.0


def _relay_for(target: str, targets: list[str]) -> str | None:
    """The relay an Anteroom target is compared with: Redis relay for a Redis target."""
    want = "relay-2p-redis" if target.endswith("-redis") else "relay-1p-memory"
    if want in targets:
        return want
    return next((t for t in targets if t.startswith("relay-")), None)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Issue 13's table: one column group (Anteroom, relay, ratio) per Anteroom target."""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    ours = [t for t in targets if not t.startswith("relay-") and t != "start"]
    by = {(r["scenario"], r["target"]): r for r in rows}
    scenarios = {r["scenario"] for r in rows}
    head = ["figure"]
    for t in ours:
        head += [t, _relay_for(t, targets) or "relay", "ratio"]
    lines = [head]
    for label, scenario, field in SUMMARY_ROWS:
        if scenario not in scenarios:
            continue
        if scenario in ("storm", "admit_all", "invite"):
            n = next((by[(scenario, t)]["ops"] for t in ours if (scenario, t) in by), None)
            label = label.replace("N", f"{n:,}") if n else label
        line = [label]
        for t in ours:
            v = by.get((scenario, t), {}).get(field)
            relay = _relay_for(t, targets)
            b = by.get((scenario, relay), {}).get(field) if relay else None
            ratio = None
            if isinstance(v, int | float) and isinstance(b, int | float) and v and b:
                ratio = b / v if field in HIGHER_BETTER else v / b
            line += [_fmt(v), _fmt(b), "-" if ratio is None else f"{ratio:,.1f}x"]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for j, line in enumerate(lines):
        cells = [c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)]
        out.append("| " + " | ".join(cells) + " |")
        if j == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


@dataclass(frozen=True)
class Regression:
    scenario: str
    target: str
    field: str
    before: float
    after: float

    @property
    def change(self) -> float:
        """How much worse, as a fraction (0.5: 50 % worse)."""
        if self.field == "lost":
            return float("inf") if not self.before else self.after / self.before - 1
        if self.field in HIGHER_BETTER:
            return self.before / self.after - 1 if self.after else float("inf")
        return self.after / self.before - 1 if self.before else float("inf")

    def __str__(self) -> str:
        worse = "inf" if self.change == float("inf") else f"{self.change:+.0%}"
        return (
            f"{self.scenario:<10} {self.target:<26} {self.field:<18} "
            f"{_fmt(self.before):>10} -> {_fmt(self.after):>10}  ({worse} worse)"
        )


def compare(
    saved: dict[str, Any], current: dict[str, Any], *, margin: float
) -> tuple[list[Regression], int]:
    """What got worse than ``saved`` by more than ``margin`` (0.2: 20 %), and how many figures
    were compared. Rows are matched by (scenario, target); a row missing on either side, or a
    scenario that failed in ``current``, is not compared (a failure is reported by itself)."""
    if margin < 0:
        raise ValueError("margin must be >= 0")
    before = {(r["scenario"], r["target"]): r for r in saved.get("results", [])}
    out: list[Regression] = []
    compared = 0
    for row in current.get("results", []):
        old = before.get((row["scenario"], row["target"]))
        if old is None or row.get("error") or old.get("error"):
            continue
        if isinstance(row.get("lost"), int) and isinstance(old.get("lost"), int):
            compared += 1
            if row["lost"] > old["lost"]:
                lost = Regression(row["scenario"], row["target"], "lost", old["lost"], row["lost"])
                out.append(lost)
        for field in COMPARED:
            a, b = old.get(field), row.get(field)
            if not isinstance(a, int | float) or not isinstance(b, int | float):
                continue
            compared += 1
            if field in HIGHER_BETTER:
                worse = b < a / (1 + margin)
            else:
                worse = b > a * (1 + margin)
                if field.endswith("_ms") and b - a < MIN_DELTA_MS:
                    worse = False
            if worse:
                out.append(Regression(row["scenario"], row["target"], field, a, b))
    return out, compared
