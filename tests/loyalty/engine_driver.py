"""Drives the engine over a `History` and reads back what it says, in the reference model's terms.

Shared by the engine-vs-reference tests. Only the engine API the rewrite keeps is used: `Store`,
`write_pages`, `loyalty.ledger.apply/run_once/balances/entries_of`, `loyalty.members.member_rows`.
`OrderRecord.status_changed_at` (and a `delivered_at`, if one is ever added) is set when it exists.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from connectors.records import OrderLine, OrderRecord, OrderStatus
from loyalty.engine import Entry
from loyalty.ledger import apply, balances, entries_of, run_once
from loyalty.members import member_rows
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey
from tests.loyalty.history_strategies import History
from tests.loyalty.reference_model import RefResult, compute
from tests.loyalty.reference_types import RefOrder, RefSpend, is_void

RECORD_FIELDS = OrderRecord.__dataclass_fields__
# Reading Q2: a rebuild knows when an order since returned was delivered only if the store keeps it.
REBUILD_KNOWS_DELIVERY = "delivered_at" in RECORD_FIELDS
BALANCE_FIELDS = ("pending", "available", "expired", "debt", "lifetime")


def migrated_template(directory: Path) -> Path:
    """One migrated SQLite file; each example works on a copy (migrating costs more than an example)."""
    path = directory / "template.db"
    engine = connect(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@contextmanager
def fresh_store(template: Path) -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.db"
        shutil.copy(template, path)
        engine = connect(f"sqlite:///{path}")
        try:
            yield Store(engine)
        finally:
            engine.dispose()


def to_record(order: RefOrder) -> OrderRecord:
    changed = order.status_changed_at or order.created_at
    extra = {}
    if "status_changed_at" in RECORD_FIELDS:
        extra["status_changed_at"] = changed
    if REBUILD_KNOWS_DELIVERY:
        extra["delivered_at"] = order.delivered_at
    lines = tuple(OrderLine(sku, None, None, 1, order.total) for sku in order.skus)
    return OrderRecord(marketplace=order.marketplace, account=order.account, order_id=order.order_id,
                       created_at=order.created_at, updated_at=changed, status=OrderStatus(order.status),
                       platform_status=order.status, fulfilment=order.fulfilment, currency=order.currency,
                       total=order.total, lines=lines, buyer_key=order.buyer_key,
                       returned_total=order.returned_total, **extra)


def write_orders(store: Store, orders: list[RefOrder], now) -> None:
    by_stream: dict[tuple[str, str], list[OrderRecord]] = defaultdict(list)
    for order in orders:
        by_stream[(order.marketplace, order.account)].append(to_record(order))
    for (mp, account), records in sorted(by_stream.items()):
        store.write_pages(StreamKey(mp, account, "orders"), [PageWrite(orders=records)], now=now)


def send(store: Store, spend: RefSpend) -> None:
    mp, account, buyer = spend.member
    apply(store, [Entry("spend", -spend.amount, spend.key, None, "promo_code", spend.at,
                        marketplace=mp, account=account, buyer_key=buyer)])


def engine_view(store: Store, history: History, members, now) -> dict:
    """What the engine says per member: tier, balances, lots {(order_id, rule): (A, owed, X)}: owed
    is what was taken back less what was forgiven, X all that was taken back (so A − X is D)."""
    tiers = {(r.marketplace, r.account, r.buyer_key): r.tier for r in member_rows(store, history.settings, now)}
    view = {}
    for member in members:
        b = balances(store, member, now)
        lots: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
        for row in entries_of(store, member):
            if row["kind"] == "earn":
                lots[(row["order_id"], row["rule"])][0] += row["amount"]
            elif row["kind"] == "reverse":
                lots[(row["order_id"], row["rule"])][1] -= row["amount"]
                lots[(row["order_id"], row["rule"])][2] -= row["amount"]
            elif row["kind"] == "adjust" and row["idempotency_key"].startswith("forgive:"):
                lots[(row["order_id"], row["rule"])][1] -= row["amount"]  # forgiven: not owed (§7)
        view[member] = {"tier": tiers.get(member), "balances": tuple(getattr(b, f) for f in BALANCE_FIELDS),
                        "lots": {k: tuple(v) for k, v in lots.items()}}
    return view


def model_view(result: RefResult) -> dict:
    view = {}
    for member, m in result.members.items():
        view[member] = {"tier": m.tier, "balances": tuple(getattr(m.balances, f) for f in BALANCE_FIELDS),
                        "lots": {k: (lot.granted, lot.owed, lot.granted - lot.kept) for k, lot in m.lots.items()},
                        "kept": {k for k, lot in m.lots.items() if lot.kept > 0}}
    return view


# -- comparing ----------------------------------------------------------------------------------------------

def differences(engine: dict, model: dict, *, kept_exactly: bool = True) -> list[str]:
    """Lines 'member: what: engine … model …'.

    A lot the model says is kept (D > 0) must have the same A and owed. A lot taken back whole, or
    one the model never granted, compares A − owed: whether a lot granted and taken back is written at
    all depends on reading Q1, what the buyer keeps (D = A less all taken back, forgiven or owed)
    does not.
    `kept_exactly=False` (live runs) compares kept lots by A − owed too: live runs may have taken a
    reward back at one void and granted it again at a later one, where the final order set shows one
    grant (§9 "a reward lost and held again"). Balances compare exactly either way.
    """
    out = []
    for member in sorted(model):
        e, m = engine[member], model[member]
        who = "/".join(member)
        if e["tier"] != m["tier"]:
            out.append(f"{who}: held tier: engine {e['tier']} model {m['tier']}")
        for name, ev, mv in zip(BALANCE_FIELDS, e["balances"], m["balances"], strict=True):
            if ev != mv:
                out.append(f"{who}: {name}: engine {ev} model {mv}")
        for key in sorted(set(e["lots"]) | set(m["lots"])):
            ev, mv = e["lots"].get(key, (0, 0, 0)), m["lots"].get(key, (0, 0, 0))
            if key in m["kept"] and kept_exactly:
                label, ev, mv = "(A, owed)", ev[:2], mv[:2]
            else:
                label, ev, mv = "D = A − taken back", ev[0] - ev[2], mv[0] - mv[2]
            if ev != mv:
                out.append(f"{who}: lot {key[0]} {key[1]} {label}: engine {ev} model {mv}")
    return out


def assert_same(engine: dict, model: dict, history: History, *, kept_exactly: bool = True) -> None:
    diff = differences(engine, model, kept_exactly=kept_exactly)
    assert not diff, "engine != reference model:\n  " + "\n  ".join(diff) + "\n" + history.describe()


def members_of(history: History) -> list[tuple[str, str, str]]:
    return sorted({(t.marketplace, "main", t.buyer_key) for t in history.timelines})


def live_runs(store: Store, history: History, after_each_run=None) -> None:
    """Spends at their times; at each run time, the orders seen by then, then `run_once`."""
    spends = sorted(history.spends, key=lambda s: s.at)
    for run_time, seen in history.arrivals():
        while spends and spends[0].at <= run_time:
            send(store, spends.pop(0))
        write_orders(store, seen, run_time)
        run_once(store, history.settings, run_time)
        if after_each_run is not None:
            after_each_run(run_time)


# -- the two ways to run the engine --------------------------------------------------------------------------

def rebuild(template: Path, history: History) -> tuple[dict, Decimal]:
    """One run at the end over the final order set, the spends already in the ledger.
    Returns the engine's view and the program's total granted."""
    final = history.final_orders(know_delivery=REBUILD_KNOWS_DELIVERY)
    with fresh_store(template) as store:
        for spend in history.spends:
            send(store, spend)
        write_orders(store, final, history.end)
        run_once(store, history.settings, history.end)
        view = engine_view(store, history, members_of(history), history.end)
        granted = sum((r["amount"] for r in entries_of(store) if r["kind"] == "earn"), Decimal(0))
    return view, granted


def total_granted_comparable(history: History) -> bool:
    """The program's total granted counts lots granted and taken back (reading Q1), which §9 says a
    rebuild may never write: it is compared only over histories without a void order."""
    return not any(is_void(o) for o in history.final_orders())


def rebuild_expected(history: History) -> RefResult:
    final = history.final_orders(know_delivery=REBUILD_KNOWS_DELIVERY)
    return compute(final, history.spends, history.rules, history.end)


def live(template: Path, history: History) -> dict:
    """Runs at the history's run times over what a sync had stored by then, spends at their times."""
    with fresh_store(template) as store:
        live_runs(store, history)
        return engine_view(store, history, members_of(history), history.end)


def live_expected(history: History) -> RefResult:
    return compute(history.final_orders(), history.spends, history.rules, history.end)


# -- the ledger's own invariants (§7) --------------------------------------------------------------------------

def invariant_breaks(store: Store, member, now) -> list[str]:
    """§7: Σ ledger = pending + available − debt; expire entries carry what expired; nothing negative;
    no lot takes back more than it granted; lifetime = Σ A − Σ taken back ≤ Σ earn + Σ reverse."""
    rows = entries_of(store, member)
    b = balances(store, member, now)
    out = []
    total = sum((r["amount"] for r in rows), Decimal(0))
    if total != b.pending + b.available - b.debt:
        out.append(f"Σ ledger {total} != pending {b.pending} + available {b.available} − debt {b.debt}")
    # §7: expire entries carry what expired; forgiveness entries give back what take-backs forgave.
    expired = -sum((r["amount"] for r in rows if r["kind"] == "expire"
                    or (r["kind"] == "adjust" and r["idempotency_key"].startswith("forgive:"))), Decimal(0))
    if expired != b.expired - b.expired_unwritten:
        out.append(f"expire entries {expired} != expired {b.expired} (unwritten {b.expired_unwritten})")
    negative = [f for f in BALANCE_FIELDS if getattr(b, f) < 0]
    if negative:
        out.append(f"negative {negative}: {b}")
    per_lot: dict = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in rows:
        if r["kind"] in ("earn", "reverse"):
            per_lot[(r["order_id"], r["rule"])][r["kind"] == "reverse"] += r["amount"]
    out += [f"lot {k} took back {-rev} of {earn}" for k, (earn, rev) in per_lot.items() if -rev > earn]
    net = sum((earn + rev for earn, rev in per_lot.values()), Decimal(0))
    if b.lifetime > net:
        out.append(f"lifetime {b.lifetime} > Σ earn + Σ reverse {net}")
    return out
