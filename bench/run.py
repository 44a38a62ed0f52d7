"""Run the benchmark suite: every bench script in its own process, one combined table, one JSON.

Each script in SCRIPTS runs as `python bench/NAME.py ARGS` (a fresh process, so peak RSS and CPU
figures are its own), its output shown as it runs and kept in bench/results/NAME.log. Afterwards
the rows of every bench/results/NAME.json written by this run (the contract in bench/_common.py)
are printed as one table (bench, metric, value, unit, target, met?) and saved, with each script's
status, to bench/results/summary.json. A script whose file is missing is skipped with a note; one
that fails or writes no fresh result is reported as such and the others still run.

Run: .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--no-postgres] [--timeout S]
  --quick   small sizes, so the whole suite finishes in a few minutes; the figures are then for
            checking the suite, not for judging the targets (which are set at full size).
Exit status: 1 if any script failed or wrote no result, else 0 (unmet targets show in the table).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name -> (arguments at full size, arguments with --quick). The order is the order they run in.
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "ingest": ([], ["--orders", "20000", "--connector-orders", "5000"]),
    "backfill": ([], ["--orders", "50000", "--reviews", "5000", "--duration", "15"]),
    "loyalty": ([], ["--orders", "50000"]),
    "accounts": ([], ["--quick"]),
    "replicas": ([], ["--quick"]),
    "crm": ([], ["--members", "2000", "--send", "100"]),
}
# Extra arguments for some scripts when run.py is given --no-postgres.
NO_POSTGRES = {"ingest": ["--no-postgres"]}


def run_script(name: str, args: list[str], timeout: float | None) -> dict:
    """Run one script, echoing and logging its output; returns its status entry."""
    path = HERE / f"{name}.py"
    command = [sys.executable, str(path), *args]
    shown = " ".join([".venv/bin/python", f"bench/{name}.py", *args])
    if not path.exists():
        return {"status": "skipped", "note": f"bench/{name}.py does not exist (yet)", "command": shown}
    RESULTS.mkdir(exist_ok=True)
    print(f"\n=== {name}: {shown}", flush=True)
    started, wall = time.time(), time.perf_counter()
    log = RESULTS / f"{name}.log"
    status, note, code = "ok", "", None
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                out.write(line)
                if timeout is not None and time.perf_counter() - wall > timeout:
                    raise subprocess.TimeoutExpired(command, timeout)
            code = proc.wait(timeout=None if timeout is None else max(1.0, timeout - (time.perf_counter() - wall)))
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by its handle
            proc.wait()
            status, note = "failed", f"timed out after {timeout:g}s"
    seconds = time.perf_counter() - wall
    result = RESULTS / f"{name}.json"
    fresh = result.exists() and result.stat().st_mtime >= started - 1
    if status == "ok" and code != 0:
        status, note = "failed", f"exit status {code}"
    if status == "ok" and not fresh:
        status, note = "failed", f"wrote no bench/results/{name}.json"
    entry = {"status": status, "note": note, "command": shown, "returncode": code, "seconds": seconds,
             "log": str(log.relative_to(HERE.parent))}
    if fresh:
        try:
            data = json.loads(result.read_text())
            entry["rows"] = [r for r in data.get("rows", []) if isinstance(r, dict) and "metric" in r]
            entry["params"] = data.get("params")
        except ValueError as exc:
            entry.update(status="failed", note=f"unreadable JSON: {exc}")
    return entry


def fmt(value) -> str:
    if not isinstance(value, int | float):
        return str(value)
    if value != value:  # NaN
        return "n/a"
    if value == int(value) and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def print_summary(benches: dict[str, dict], quick: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    title = "loyalsync benchmarks" + (" (--quick: small sizes, not for judging targets)" if quick else "")
    table = Table(title=title, show_lines=False)
    for col, justify in (("bench", "left"), ("metric", "left"), ("value", "right"), ("unit", "left"),
                         ("target", "left"), ("met?", "center")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, b in benches.items():
        rows = b.get("rows") or []
        if not rows:
            table.add_row(name, f"[yellow]{b['status']}[/]: {b.get('note') or 'no rows'}", "", "", "", "")
            continue
        for i, r in enumerate(rows):
            met = r.get("met")
            mark = "" if met is None else ("[green]yes[/]" if met else "[red]NO[/]")
            table.add_row(name if i == 0 else "", str(r["metric"]), fmt(r.get("value")), str(r.get("unit", "")),
                          r.get("target") or "", mark)
        if b["status"] != "ok":
            table.add_row("", f"[yellow]{b['status']}[/]: {b.get('note')}", "", "", "", "")
        table.add_section()
    console = Console()
    console.print()
    console.print(table)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: the whole suite in a few minutes")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=list(SCRIPTS),
                    help=f"run only these ({', '.join(SCRIPTS)})")
    ap.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows of ingest")
    ap.add_argument("--timeout", type=float, help="seconds after which a script is stopped (default: none)")
    args = ap.parse_args()

    started = datetime.now(UTC)
    benches: dict[str, dict] = {}
    for name, (full, quick) in SCRIPTS.items():
        if args.only and name not in args.only:
            continue
        script_args = list(quick if args.quick else full)
        if args.no_postgres:
            script_args += NO_POSTGRES.get(name, [])
        benches[name] = run_script(name, script_args, args.timeout)
        if benches[name]["status"] != "ok":
            print(f"--- {name}: {benches[name]['status']}: {benches[name]['note']}", flush=True)

    print_summary(benches, args.quick)
    rows = [{"bench": name, **r} for name, b in benches.items() for r in b.get("rows") or []]
    judged = [r for r in rows if r.get("met") is not None]
    summary = {
        "generated_at": started.isoformat(), "quick": args.quick, "python": sys.version.split()[0],
        "args": vars(args), "rows": rows,
        "targets": {"judged": len(judged), "met": sum(1 for r in judged if r["met"]),
                    "not_met": [f"{r['bench']}: {r['metric']}" for r in judged if not r["met"]]},
        "benches": {name: {k: v for k, v in b.items() if k != "rows"} for name, b in benches.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    skipped = [n for n, b in benches.items() if b["status"] == "skipped"]
    failed = [n for n, b in benches.items() if b["status"] == "failed"]
    print(f"targets met: {summary['targets']['met']} of {len(judged)}"
          + ("; skipped: " + ", ".join(f"{n} ({benches[n]['note']})" for n in skipped) if skipped else "")
          + (f"; FAILED: {', '.join(failed)}" if failed else "")
          + f"\nwritten: {(RESULTS / 'summary.json').relative_to(HERE.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
