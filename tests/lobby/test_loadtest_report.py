"""``manage.py loadtest``'s report: the issue-13 summary table, ``--compare`` against a saved
report, the profile summary, and the command's argument checks (no servers are started)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from lobby.loadtest import profile, runner
from lobby.loadtest.report import MIN_DELTA_MS, compare, summary_table


def row(scenario, target, **figures):
    base = {
        "scenario": scenario,
        "target": target,
        "ops": 200,
        "lost": 0,
        "p50_ms": None,
        "p99_ms": None,
        "max_ms": None,
        "completion_ms": None,
        "cpu_ms_per_op": None,
        "error": None,
    }
    return base | figures


def report(*rows):
    return {
        "started_at": "2026-12-01T14:00:00Z",
        "machine": {"load_avg": [1, 1, 1]},
        "results": list(rows),
    }


A = "anteroom-1p-sqlite-memory"
R = "relay-1p-memory"


def test_compare_lists_only_what_got_worse_by_more_than_the_margin():
    saved = report(
        row("knock100", A, p50_ms=10.0, p99_ms=20.0, cpu_ms_per_op=2.0, x_relay_1p=5.0),
        row("connects", A, per_s=1000.0, cpu_ms_per_op=0.8),
    )
    now = report(
        # p50 +20 % (inside a 25 % margin), p99 +50 % (worse), CPU better, ratio +30 % (worse).
        row("knock100", A, p50_ms=12.0, p99_ms=30.0, cpu_ms_per_op=1.0, x_relay_1p=6.5),
        # Fewer connects per second is worse (higher is better for rates).
        row("connects", A, per_s=700.0, cpu_ms_per_op=0.8),
    )
    worse, compared = compare(saved, now, margin=0.25)
    assert {(r.scenario, r.field) for r in worse} == {
        ("knock100", "p99_ms"),
        ("knock100", "x_relay_1p"),
        ("connects", "per_s"),
    }
    assert compared == 8  # lost + 4 figures, lost + 2 figures
    p99 = next(r for r in worse if r.field == "p99_ms")
    assert (p99.before, p99.after) == (20.0, 30.0)
    assert p99.change == pytest.approx(0.5)
    assert "20.00 ->      30.00" in str(p99) and "+50% worse" in str(p99)
    rate = next(r for r in worse if r.field == "per_s")
    assert rate.change == pytest.approx(1000 / 700 - 1)


def test_compare_counts_any_new_loss_whatever_the_margin():
    saved = report(row("idle", A, lost=0, kib_per_socket=14.0))
    now = report(row("idle", A, lost=3, kib_per_socket=14.0))
    worse, _ = compare(saved, now, margin=10.0)
    assert [(r.field, r.before, r.after) for r in worse] == [("lost", 0, 3)]
    assert "inf worse" in str(worse[0])


def test_compare_ignores_tiny_latency_growth_and_unmatched_or_failed_rows():
    saved = report(
        row("knock20", A, p50_ms=1.0),
        row("storm", A, completion_ms=100.0),
        row("admit_all", A, completion_ms=100.0),
    )
    now = report(
        row("knock20", A, p50_ms=1.0 + MIN_DELTA_MS * 0.9),  # +90 %, but under a millisecond
        row("storm", A, completion_ms=900.0, error="TimeoutError: x"),  # failed: not compared
        row("invite", A, completion_ms=900.0),  # not in the saved report
        row("admit_all", "anteroom-2p-pg-redis", completion_ms=900.0),  # other target
    )
    worse, compared = compare(saved, now, margin=0.1)
    assert worse == []
    assert compared == 2  # knock20: lost and p50


def test_compare_refuses_a_negative_margin():
    with pytest.raises(ValueError):
        compare(report(), report(), margin=-0.1)


def test_summary_table_puts_each_target_beside_its_relay_with_the_ratio():
    rows = [
        row("knock100", A, p50_ms=6.0, p99_ms=30.0, cpu_ms_per_op=1.5),
        row("knock100", R, p50_ms=2.0, p99_ms=3.0, cpu_ms_per_op=0.3),
        row("knock100", "anteroom-1p-pg-redis", p50_ms=9.0, p99_ms=40.0, cpu_ms_per_op=2.0),
        row("knock100", "relay-2p-redis", p50_ms=3.0, p99_ms=4.0, cpu_ms_per_op=1.0),
        row("connects", A, per_s_per_process=500.0, cpu_ms_per_op=1.0),
        row("connects", R, per_s_per_process=2000.0, cpu_ms_per_op=0.25),
        row("storm", A, ops=200, completion_ms=150.0),
        row("storm", R, ops=200, completion_ms=50.0),
    ]
    lines = summary_table(rows).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "figure",
        "anteroom-1p-sqlite-memory",
        "relay-1p-memory",
        "ratio",
        "anteroom-1p-pg-redis",
        "relay-2p-redis",
        "ratio",
    ]
    cells = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in lines[2:]}
    # The Redis target is compared with the Redis relay, the embedded one with the single relay.
    assert cells["knock 100/s, p50 ms"] == ["6.00", "2.00", "3.0x", "9.00", "3.00", "3.0x"]
    assert cells["knock 100/s, p99 ms"] == ["30.00", "3.00", "10.0x", "40.00", "4.00", "10.0x"]
    # For a rate the ratio says how many times slower Anteroom is: relay / Anteroom.
    assert cells["connects per second (per process)"][:3] == ["500", "2,000", "4.0x"]
    assert cells["storm of 200: last entry-requested, ms"][:3] == ["150", "50.00", "3.0x"]
    assert "knock 20/s, p99 ms" not in cells  # scenarios not run are left out


def test_profile_summary_reads_py_spys_collapsed_stacks(tmp_path):
    raw = tmp_path / "t-knock100-1.txt"
    knock = "knock (/x/site-packages/lobby/services.py:5)"
    raw.write_text(
        f"thread (0x1);run (asyncio/base_events.py:1);{knock} 30\n"
        f"thread (0x1);run (asyncio/base_events.py:1);{knock};"
        "execute (django/db/backends/utils.py:9) 60\n"
        "thread (0x2);select (selectors.py:3) 10\n"
    )
    stacks = profile.parse(raw.read_text())
    assert sum(stacks.values()) == 100
    total, inclusive, own = profile.top_frames(stacks, n=3)
    assert total == 100
    assert [(t.frame, t.inclusive, t.self_share) for t in inclusive] == [
        ("run (asyncio/base_events.py)", 0.9, 0.0),
        ("knock (lobby/services.py)", 0.9, 0.3),
        ("execute (django/db/backends/utils.py)", 0.6, 0.6),
    ]
    assert own[0].frame == "execute (django/db/backends/utils.py)"
    rec = profile.Recording("t-knock100", raw, proc=None)  # type: ignore[arg-type]
    text = profile.summary([rec], n=3)
    assert "-- profile t-knock100: 100 samples" in text
    assert "90.0%  30.0%  knock (lobby/services.py)" in text
    assert profile.top_frames(Counter(), n=3) == (0, [], [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "mysql"], "--backends is sqlite, pg or sqlite,pg"),
        (["--backends", "pg"], "--backends pg needs --database-url"),
        (["--knock-rates", "20,fast"], "--knock-rates is a list of numbers"),
        (["--knock-rates", "0"], "--knock-rates must be positive"),
        (["--margin", "-1"], "--margin must be >= 0"),
        (["--scenarios", "knock,nap"], "unknown scenarios: nap"),
        (["--compare", "/nonexistent/report.json"], "--compare: cannot read"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("loadtest", *args)


def test_a_saved_report_that_is_not_json_is_refused(tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="cannot read"):
        call_command("loadtest", "--compare", str(bad))


class FakeTarget(runner.Target):
    def __init__(self, *, can_restart: bool) -> None:
        self.name, self.ws_bases, self.pids = "fake", ["ws://127.0.0.1:1"], [1]
        self.can_restart, self.restarts = can_restart, 0

    def restart(self) -> bool:
        if self.can_restart:
            self.restarts += 1
            self.served = 0
        return self.can_restart


@pytest.mark.parametrize("can_restart", [True, False])
async def test_the_idle_run_measures_memory_only_on_processes_that_served_nothing_before(
    monkeypatch, can_restart
):
    """Memory freed by earlier scenarios stays in the server process and the idle sockets
    reuse it: after admit-all of 1,000 the idle run read -4.21 KiB per socket. Processes the
    command started are restarted for it; others (``--url``) get no memory figure."""
    seen: list[int] = []

    async def knock(target, sizes, timeout):
        return runner.Result("knock20", target.name, ops=1)

    async def idle(target, sizes, timeout):
        seen.append(target.served)
        res = runner.Result("idle", target.name, ops=1)
        res.extra["kib_per_socket"] = 12.0 if target.served == 0 else None
        return res

    monkeypatch.setattr(runner, "scenario_knock_at", lambda rate: knock)
    monkeypatch.setattr(runner, "SCENARIO_FUNCS", {**runner.SCENARIO_FUNCS, "idle": idle})
    target = FakeTarget(can_restart=can_restart)
    sizes = runner.Sizes.quick()
    sizes.knock_rates = (20.0,)
    rows = await runner.run_scenarios(
        target, ["knock", "idle"], sizes, timeout=5, log=lambda m: None
    )
    assert [r.error for r in rows] == [None, None]
    assert target.restarts == (1 if can_restart else 0)
    assert seen == [0 if can_restart else 1]
    # An idle run first needs no restart.
    target = FakeTarget(can_restart=True)
    await runner.run_scenarios(target, ["idle"], sizes, timeout=5, log=lambda m: None)
    assert target.restarts == 0
