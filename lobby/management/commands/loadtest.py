"""``python manage.py loadtest``: measure a running Anteroom (or one this command starts) and a
bare ``websockets`` relay doing the same JSON work, in the same run. See docs/deployment.md."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lobby.loadtest import report as reports
from lobby.loadtest import runner


class Command(BaseCommand):
    help = (
        "Benchmark Anteroom against a bare websockets relay (single process and through Redis "
        "pub/sub): knock -> moderator (paced, open-loop), knock storm, admit-all, "
        "create-and-invite, connects per second, idle waiting sockets. Prints a table "
        "(or --json); every scenario is bounded by --timeout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="a running Anteroom (http://host:port); needs --api-key")
        parser.add_argument("--api-key", help="REST API key for --url (manage.py create_api_key)")
        parser.add_argument(
            "--server-pids",
            default="",
            help="with --url: comma-separated server pids on this machine, for CPU and memory",
        )
        parser.add_argument(
            "--processes",
            default="1",
            help="Daphne processes to start: 1, 2 or 1,2 (both, one after the other)",
        )
        parser.add_argument(
            "--database-url",
            help="PostgreSQL for the started servers: each target gets a new empty database on "
            "its server (dropped afterwards; the role needs CREATEDB) unless --keep-database",
        )
        parser.add_argument(
            "--keep-database",
            action="store_true",
            help="run the PostgreSQL targets on --database-url itself",
        )
        parser.add_argument(
            "--backends",
            help="servers to start: sqlite (the embedded default: SQLite + in-memory layer, one "
            "process) and/or pg (--database-url, --redis-url, --processes); default: sqlite, "
            "and pg too when --database-url is given",
        )
        parser.add_argument(
            "--knock-rates",
            help="paced knock runs, knocks per second (default 20,100; e.g. 20,100,500)",
        )
        parser.add_argument("--redis-url", help="Redis for the started servers and the relay")
        parser.add_argument(
            "--scenarios",
            default=",".join(runner.SCENARIOS),
            help=f"comma-separated subset of {','.join(runner.SCENARIOS)}",
        )
        parser.add_argument("--no-baseline", action="store_true", help="skip the bare relays")
        parser.add_argument("--quick", action="store_true", help="tiny numbers (a smoke test)")
        parser.add_argument("--idle", type=int, help="idle waiting sockets (default 10000)")
        parser.add_argument("--timeout", type=float, help="seconds per scenario wait")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--output", "--save", dest="output", help="also write the JSON report to this file"
        )
        parser.add_argument(
            "--compare",
            metavar="REPORT",
            help="a saved report (--output): list what got worse than it by more than --margin "
            "and exit with status 1 if anything did",
        )
        parser.add_argument(
            "--margin",
            type=float,
            default=0.25,
            help="with --compare: how much worse counts, as a fraction (default 0.25 = 25%%)",
        )
        parser.add_argument(
            "--profile",
            metavar="DIR",
            help="record the server processes with py-spy during each measured phase; raw "
            "stacks go to DIR and the top frames are printed",
        )
        parser.add_argument("--plot", metavar="FILE", help="draw latency CDFs (needs matplotlib)")

    def handle(self, *args: Any, **opts: Any) -> None:
        sizes = runner.Sizes.quick() if opts["quick"] else runner.Sizes()
        if opts["idle"] is not None:
            sizes.idle_sockets = opts["idle"]
        timeout = opts["timeout"] or (20.0 if opts["quick"] else 120.0)
        names = [s.strip() for s in opts["scenarios"].split(",") if s.strip()]
        unknown = set(names) - set(runner.SCENARIOS)
        if unknown:
            raise CommandError(f"unknown scenarios: {', '.join(sorted(unknown))}")
        if opts["url"] and not opts["api_key"]:
            raise CommandError("--url needs --api-key")
        try:
            processes = [int(p) for p in str(opts["processes"]).split(",")]
        except ValueError as exc:
            raise CommandError("--processes is 1, 2 or 1,2") from exc
        if any(p not in (1, 2) for p in processes):
            raise CommandError("--processes is 1, 2 or 1,2")
        default_backends = "sqlite,pg" if opts["database_url"] else "sqlite"
        backends = [b.strip() for b in (opts["backends"] or default_backends).split(",")]
        backends = [b for b in backends if b]
        if set(backends) - {"sqlite", "pg"} or not backends:
            raise CommandError("--backends is sqlite, pg or sqlite,pg")
        if "pg" in backends and not opts["url"] and not opts["database_url"]:
            raise CommandError("--backends pg needs --database-url")
        opts["backends_list"] = backends
        if 2 in processes and "pg" in backends and not opts["url"] and not opts["redis_url"]:
            raise CommandError("--processes 2 needs --redis-url")
        if opts["knock_rates"]:
            try:
                sizes.knock_rates = tuple(float(r) for r in opts["knock_rates"].split(","))
            except ValueError as exc:
                raise CommandError("--knock-rates is a list of numbers, e.g. 20,100,500") from exc
            if any(r <= 0 for r in sizes.knock_rates):
                raise CommandError("--knock-rates must be positive")
        saved = None
        if opts["compare"]:
            try:
                saved = json.loads(Path(opts["compare"]).read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"--compare: cannot read {opts['compare']}: {exc}") from exc
        if opts["margin"] < 0:
            raise CommandError("--margin must be >= 0")
        profiler = None
        if opts["profile"]:
            from lobby.loadtest.profile import Profiler

            try:
                profiler = Profiler(Path(opts["profile"]))
            except RuntimeError as exc:
                raise CommandError(str(exc)) from exc
        opts["profiler"] = profiler
        log_dir = Path(tempfile.mkdtemp(prefix="anteroom-loadtest-logs-"))
        say = (lambda m: self.stderr.write(m)) if opts["json"] else (lambda m: self.stdout.write(m))
        started = time.time()
        # SIGTERM (or Ctrl-C) still stops every server process this run started.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            results = asyncio.run(self._run(opts, names, sizes, timeout, processes, log_dir, say))
        finally:
            runner.stop_all()
        rows = [r.summary() for r in results]
        runner.add_ratios(rows)
        report = {
            "command": "python manage.py loadtest " + " ".join(self._argv(opts)),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1),
            "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()},
            "sizes": sizes.__dict__,
            "timeout_s": timeout,
            "logs": str(log_dir),
            "results": rows,
        }
        if opts["output"]:
            Path(opts["output"]).write_text(json.dumps(report, indent=2))
        if opts["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(runner.table(rows))
            self.stdout.write("")
            self.stdout.write(reports.summary_table(rows))
            self.stdout.write(f"server logs: {log_dir}")
        if profiler is not None:
            from lobby.loadtest.profile import summary

            say(summary(profiler.done, n=25))
        if opts["plot"]:
            say(runner.plot(results, opts["plot"]))
        if saved is not None:
            worse, compared = reports.compare(saved, report, margin=opts["margin"])
            say(
                f"compared {compared} figures with {opts['compare']} "
                f"({saved.get('started_at', '?')}, load {saved.get('machine', {}).get('load_avg')})"
                f": {len(worse)} worse by more than {opts['margin']:.0%}"
            )
            for r in worse:
                say(f"  {r}")
            if worse:
                raise CommandError(f"{len(worse)} figure(s) worse than {opts['compare']}")

    @staticmethod
    def _argv(opts: dict[str, Any]) -> list[str]:
        out = []
        for key in (
            "url",
            "backends",
            "processes",
            "database_url",
            "redis_url",
            "scenarios",
            "knock_rates",
            "idle",
        ):
            if opts.get(key) is not None:
                out.append(f"--{key.replace('_', '-')} {opts[key]}")
        out += [f"--{k}" for k in ("quick", "no_baseline", "json") if opts.get(k)]
        return out

    async def _run(
        self,
        opts: dict[str, Any],
        names: list[str],
        sizes: runner.Sizes,
        wait_s: float,
        processes: list[int],
        log_dir: Path,
        say: Any,
    ) -> list[runner.Result]:
        results: list[runner.Result] = []
        targets: list[Any] = []
        if opts["url"]:
            pids = [int(p) for p in opts["server_pids"].split(",") if p.strip()]
            base = opts["url"].rstrip("/")
            targets.append(lambda: runner.Anteroom("anteroom-url", [base], opts["api_key"], pids))
        else:
            for backend in opts["backends_list"]:
                for n in processes if backend == "pg" else [1]:
                    targets.append(
                        lambda n=n, backend=backend: runner.start_anteroom(
                            processes=n,
                            database_url=opts["database_url"] if backend == "pg" else None,
                            redis_url=opts["redis_url"] if backend == "pg" else None,
                            log_dir=log_dir,
                            fresh_database=not opts["keep_database"],
                        )
                    )
        if not opts["no_baseline"]:
            targets.append(lambda: runner.start_relay(processes=1, redis_url=None, log_dir=log_dir))
            if opts["redis_url"]:
                targets.append(
                    lambda: runner.start_relay(
                        processes=2, redis_url=opts["redis_url"], log_dir=log_dir
                    )
                )
        for make in targets:
            try:
                target = await asyncio.to_thread(make)
            except Exception as exc:
                say(f"could not start a target: {exc}")
                results += [runner.Result(n, "start", error=str(exc)[:300]) for n in names]
                continue
            if isinstance(target, runner.Anteroom):
                target.profiler = opts["profiler"]
            say(f"== {target.name} ({', '.join(target.ws_bases)})")
            try:
                results += await runner.run_scenarios(target, names, sizes, timeout=wait_s, log=say)
            finally:
                await asyncio.to_thread(target.close)
        return results
