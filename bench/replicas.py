"""Scale-out on PostgreSQL: 1 vs 2 daemon replicas over many accounts, and a killed replica's handover.

What is measured
  Each replica is a child process running the real `app.scheduler.Daemon` (leases, heartbeats,
  rebalancing: `sync.cluster`) on one fresh PostgreSQL database. Every replica serves itself the
  Wildberries emulator in-process through `httpx.ASGITransport`, rate limits lifted on both sides,
  so the run is CPU-bound and the emulator's work grows with the replicas as a platform's would.
  Every account reads the orders stream (the emulator hands each account the same seeded orders).

  (a) throughput  `--accounts` accounts (default 300) with `--orders` orders each; the replicas
                  start together, and the run ends when every account's first sync is done (its
                  cursor row says ok). Reported: orders/s with 1 replica and with 2 in the steady
                  state (between 10 % and 90 % of the orders written, read from the cursor rows every 0.2 s: without
                  the replicas' 2 s settle at start and the tail of the last accounts), and the
                  end-to-end ratio beside it. Target: 2 replicas >= 1.6x one replica (steady
                  state) on this 2-core machine. Beside it, the CPU each order costs in the
                  replica processes and in the PostgreSQL server (Linux /proc, same window), and
                  the ratio's ceiling at one replica's costs: cores / (both per order) orders/s
                  against one replica's rate. No scale-out can beat that ceiling on this machine.
  (b) handover    2 replicas, polls every `--poll` seconds, lease period `--lease` seconds. Once
                  both hold their share, one is killed with SIGKILL. Reported: the time until the
                  survivor holds every account the killed one held and has started running them
                  (one has run since the kill), in seconds and in lease periods, and the time until
                  every one of them has run again (that adds the survivor's queue of 150 accounts'
                  runs behind its 8 job slots). Target: taken over within 2 lease periods.

Run: .venv/bin/python bench/replicas.py [--accounts 300] [--orders 1000] [--lease 6] [--poll 4] [--quick]
Writes bench/results/replicas.json (the bench/_common.py contract).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from bench._common import print_rows, row, write_result  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN_ENV = "LOYALSYNC_BENCH_WB_TOKEN"
GROUPS = ("marketplace", "statistics", "feedbacks")


def write_config(root: Path, database_url: str, accounts: int, poll: float, lease: float) -> Path:
    (root / "marketplaces").mkdir(parents=True, exist_ok=True)
    (root / "loyalsync.toml").write_text(textwrap.dedent(f"""\
        [database]
        url = "{database_url}"
        [schedule]
        jitter_seconds = 0
        max_concurrent_jobs = 8
        [loyalty]
        enabled = false
        [service]
        enabled = false
        [cluster]
        lease_seconds = {lease}
        """), encoding="utf-8")
    lifted = "".join(f"[accounts.rate_limits.{g}]\nrequests = 1000000\nperiod_seconds = 1\nburst = 100000\n"
                     for g in GROUPS)
    blocks = []
    for i in range(accounts):
        blocks.append(textwrap.dedent(f"""\
            [[accounts]]
            name = "a{i:04d}"
            token_env = "{TOKEN_ENV}"
            [accounts.streams.orders]
            poll_interval = "{poll:g}s"
            [accounts.streams.orders_statistics]
            enabled = false
            [accounts.streams.reviews]
            enabled = false
            """) + lifted)
    (root / "marketplaces" / "wildberries.toml").write_text("\n".join(blocks), encoding="utf-8")
    return root / "loyalsync.toml"


def replica_main(config: str, orders: int) -> None:
    """One replica: the real daemon, with the WB emulator served to it in-process."""
    import asyncio

    import httpx

    from app.config import load_config
    from app.logs import setup_logging
    from app.scheduler import Daemon
    from app.wiring import App
    from connectors.wildberries.emulator import EmulatorConfig, create_app

    cfg = load_config(Path(config))
    setup_logging([a.settings.token.get_secret_value() for a in cfg.accounts])
    emulator = create_app(EmulatorConfig(seed=7, orders=orders, reviews=0, history_days=30, now=NOW,
                                         rate_limits=False))

    async def main() -> None:
        app = App(cfg, transports={"wildberries": httpx.ASGITransport(app=emulator)})
        daemon = Daemon(app)
        # Ready: imports done, config read, store migrated. Start when the bench says go, so
        # process start-up is not timed and the replicas start together.
        go = Path(os.environ["LOYALSYNC_BENCH_GO"])
        Path(f"{go}.{daemon.replica}.ready").touch()
        while not go.exists():
            await asyncio.sleep(0.01)
        await daemon.run()

    asyncio.run(main())


class Database:
    """A fresh PostgreSQL database for one measurement, migrated, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"loyalsync_bench_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"
        from store import connect, migrate

        self.engine = connect(self.url)
        migrate(self.engine)

    def drop(self) -> None:
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": self.name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self.admin.dispose()


def start_replicas(config: Path, count: int, orders: int, logs: Path) -> list[subprocess.Popen]:
    """`count` replicas, ready and then started at the same moment."""
    go = logs / f"{config.parent.name}.go"
    procs = [start_replica(config, f"r{i}", orders, logs / f"{config.parent.name}-r{i}.log", go)
             for i in range(count)]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.r{i}.ready").exists() for i in range(count)):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            stop(procs)
            tail = (logs / f"{config.parent.name}-r0.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"a replica did not get ready; its log ends:\n{tail}")
        time.sleep(0.02)
    go.touch()
    return procs


def start_replica(config: Path, name: str, orders: int, log: Path, go: Path) -> subprocess.Popen:
    env = {**os.environ, TOKEN_ENV: "bench-token", "LOYALSYNC_REPLICA": name, "LOYALSYNC_LOG_FORMAT": "json",
           "LOYALSYNC_BENCH_GO": str(go)}
    with log.open("ab") as out:
        script = str(Path(__file__).resolve())
        return subprocess.Popen([sys.executable, script, "--replica", str(config), "--orders", str(orders)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


class CpuMeter:
    """CPU seconds used so far by the replica processes and by the PostgreSQL server (Linux /proc).

    The ratio of replicas can only be read against these: on a machine whose cores PostgreSQL
    shares, two replicas at one replica's costs per order cannot do more than
    cores / (replica + PostgreSQL CPU per order), whatever the scale-out does.
    """

    def __init__(self, replicas: list[subprocess.Popen]):
        self.replicas = [p.pid for p in replicas]
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.available = Path("/proc/self/stat").exists()

    def _cpu(self, pid: int | str) -> tuple[str, float]:
        """(command name, user + system CPU seconds) of one process; ("", 0) once it is gone."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return "", 0.0
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        return name, (int(fields[11]) + int(fields[12])) / self.tick

    def read(self) -> tuple[float, float] | None:
        """(replicas' CPU seconds, PostgreSQL's CPU seconds), or None where /proc is not there."""
        if not self.available:
            return None
        replicas = sum(self._cpu(pid)[1] for pid in self.replicas)
        server = 0.0
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                name, cpu = self._cpu(pid)
                server += cpu if name.startswith("postgres") else 0.0
        return replicas, server


def _cursor_table():
    from store.tables import StreamCursorRow

    return StreamCursorRow.__table__  # type: ignore[attr-defined]


def throughput(replicas: int, accounts: int, orders: int, tmp: Path) -> dict:
    db = Database()
    try:
        config = write_config(tmp / f"tp{replicas}", db.url, accounts, poll=3600, lease=30)
        cursors = _cursor_table()
        from store.tables import OrderRow

        procs = start_replicas(config, replicas, orders, tmp)
        started = time.monotonic()
        meter = CpuMeter(procs)
        samples: list[tuple[float, int]] = []  # (seconds since go, orders written)
        cpu: list[tuple[float, float] | None] = []  # (replicas, PostgreSQL) CPU seconds at each sample
        orders_table = OrderRow.__table__  # type: ignore[attr-defined]
        # The probe reads the 300 cursor rows, not count(*) of the orders table: counting a table of
        # hundreds of thousands of rows 5 times a second would eat the CPU being measured.
        written = select(func.coalesce(func.sum(cursors.c.records_synced), 0)).where(cursors.c.stream == "orders")
        try:
            while True:
                with db.engine.connect() as conn:
                    done = conn.execute(select(func.count()).select_from(cursors).where(
                        cursors.c.stream == "orders", cursors.c.state == "ok")).scalar_one()
                    samples.append((time.monotonic() - started, conn.execute(written).scalar_one()))
                cpu.append(meter.read())
                if done >= accounts:
                    break
                if any(p.poll() is not None for p in procs):
                    raise SystemExit(f"a replica exited early; see {tmp}")
                time.sleep(0.2)
            elapsed = time.monotonic() - started
        finally:
            stop(procs)
        with db.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(orders_table)).scalar_one()
        # Steady state: the rate between 10 % and 90 % of the orders, without start-up (the
        # replicas' settle and first share) and the tail (the last accounts finishing one by one).
        total = samples[-1][1]
        i10 = next(i for i, (_, n) in enumerate(samples) if n >= 0.1 * total)
        i90 = next(i for i, (_, n) in enumerate(samples) if n >= 0.9 * total)
        (t10, n10), (t90, n90) = samples[i10], samples[i90]
        out = {"replicas": replicas, "orders": stored, "seconds": elapsed, "orders_per_s": stored / elapsed,
               "steady_orders_per_s": (n90 - n10) / (t90 - t10)}
        if cpu[i10] is not None and cpu[i90] is not None:
            (r10, p10), (r90, p90) = cpu[i10], cpu[i90]
            out["steady_cpu_us_per_order"] = {"replicas": 1e6 * (r90 - r10) / (n90 - n10),
                                              "postgresql": 1e6 * (p90 - p10) / (n90 - n10)}
            out["steady_cores"] = {"replicas": (r90 - r10) / (t90 - t10), "postgresql": (p90 - p10) / (t90 - t10)}
        return out
    finally:
        db.drop()


def handover(accounts: int, orders: int, lease: float, poll: float, tmp: Path) -> dict:
    from sync.leases import LEASES

    db = Database()
    try:
        config = write_config(tmp / "handover", db.url, accounts, poll=poll, lease=lease)
        cursors = _cursor_table()
        procs = start_replicas(config, 2, orders, tmp)
        try:
            # Steady state: every account synced once and both replicas holding their share.
            deadline = time.monotonic() + 600
            while True:
                with db.engine.connect() as conn:
                    ok = conn.execute(select(func.count()).select_from(cursors).where(
                        cursors.c.state == "ok")).scalar_one()
                    held = dict(conn.execute(select(LEASES.c.holder, func.count()).where(
                        LEASES.c.name.like("account:%")).group_by(LEASES.c.holder)).all())
                if ok >= accounts and len(held) == 2 and sum(held.values()) == accounts:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"no steady state within 600 s; see {tmp}")
                time.sleep(0.2)
            with db.engine.connect() as conn:
                orphans = [n.removeprefix("account:wildberries/") for (n,) in conn.execute(
                    select(LEASES.c.name).where(LEASES.c.holder == "r0", LEASES.c.name.like("account:%")))]
            killed_at = datetime.now(UTC)
            t0 = time.monotonic()
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            names = [f"account:wildberries/{a}" for a in orphans]
            taken = None
            while True:
                with db.engine.connect() as conn:
                    moved = conn.execute(select(func.count()).select_from(LEASES).where(
                        LEASES.c.name.in_(names), LEASES.c.holder == "r1")).scalar_one()
                    resumed = conn.execute(select(func.count()).select_from(cursors).where(
                        cursors.c.account.in_(orphans), cursors.c.last_run_at > killed_at)).scalar_one()
                if taken is None and moved >= len(orphans) and resumed > 0:
                    taken = time.monotonic() - t0
                if resumed >= len(orphans):
                    break
                if time.monotonic() - t0 > 20 * lease:
                    raise SystemExit(f"work not resumed within {20 * lease} s; see {tmp}")
                time.sleep(0.05)
            seconds = time.monotonic() - t0
        finally:
            stop(procs)
        return {"orphaned_accounts": len(orphans), "taken_over_s": taken, "all_ran_again_s": seconds,
                "lease_seconds": lease, "lease_periods": taken / lease}
    finally:
        db.drop()


def cpu_rows(one: dict, two: dict) -> list[dict]:
    """Where the CPU of an order goes, and the ratio this machine allows at one replica's costs."""
    if "steady_cpu_us_per_order" not in one or "steady_cpu_us_per_order" not in two:
        return []  # no /proc: the figures are left out, not faked
    cores = os.cpu_count() or 1
    r, p = one["steady_cpu_us_per_order"]["replicas"], one["steady_cpu_us_per_order"]["postgresql"]
    # Every core busy at one replica's CPU per order (replica + server), against one replica.
    ceiling = cores / ((r + p) / 1e6) / one["steady_orders_per_s"]
    return [
        row("1 replica: CPU per order, replica process (its emulator included)", r, "µs"),
        row("1 replica: CPU per order, PostgreSQL server", p, "µs"),
        row("1 replica: cores busy, replica + PostgreSQL",
            one["steady_cores"]["replicas"] + one["steady_cores"]["postgresql"], "cores"),
        row("2 replicas: CPU per order, replica processes", two["steady_cpu_us_per_order"]["replicas"], "µs"),
        row("2 replicas: CPU per order, PostgreSQL server", two["steady_cpu_us_per_order"]["postgresql"], "µs"),
        row(f"ceiling of the ratio on {cores} cores at 1 replica's CPU per order", ceiling, "x"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--orders", type=int, default=1000, help="orders per account in the emulator")
    parser.add_argument("--lease", type=float, default=6.0, help="lease period of the handover part, seconds")
    parser.add_argument("--poll", type=float, default=4.0, help="poll interval of the handover part, seconds")
    parser.add_argument("--quick", action="store_true", help="60 accounts x 300 orders")
    parser.add_argument("--replica", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        replica_main(args.replica, args.orders)
        return
    if args.quick:
        args.accounts, args.orders = 60, 300
    with tempfile.TemporaryDirectory(prefix="loyalsync-replicas-") as tmp:
        one = throughput(1, args.accounts, args.orders, Path(tmp))
        two = throughput(2, args.accounts, args.orders, Path(tmp))
        moved = handover(args.accounts, args.orders, args.lease, args.poll, Path(tmp))
    ratio = two["steady_orders_per_s"] / one["steady_orders_per_s"]
    end_to_end = two["orders_per_s"] / one["orders_per_s"]
    rows = [
        row("1 replica: orders/s, steady state (CPU-bound, PostgreSQL)", one["steady_orders_per_s"], "orders/s"),
        row("2 replicas: orders/s, steady state (CPU-bound, PostgreSQL)", two["steady_orders_per_s"], "orders/s"),
        row("2 replicas / 1 replica, steady state", ratio, "x", ">= 1.6", ratio >= 1.6),
        row("2 replicas / 1 replica, end to end (start-up and tail included)", end_to_end, "x"),
        *cpu_rows(one, two),
        row("killed replica's accounts taken over and running elsewhere", moved["taken_over_s"], "s"),
        row("  in lease periods", moved["lease_periods"], "periods", "<= 2", moved["lease_periods"] <= 2),
        row("  every one of them has run again", moved["all_ran_again_s"], "s"),
    ]
    params = {"accounts": args.accounts, "orders_per_account": args.orders, "lease_seconds": args.lease,
              "poll_seconds": args.poll, "cpus": os.cpu_count()}
    print_rows("replicas", rows)
    write_result("replicas", params, rows, throughput=[one, two], handover=moved)


if __name__ == "__main__":
    main()
