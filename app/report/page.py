"""The report page: one self-contained HTML document from a `Report` (inline CSS and SVG, no script).

Pure rendering. Every string that can come from a platform (product names, account and stream
names, error messages) is escaped here or in `app.report.svg`. A Content-Security-Policy forbids
loading anything, so the file opens without a network and cannot run a script even if one slipped in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from html import escape

from app.report.data import NO_TIER, Report
from app.report.svg import Series, bar_chart, empty_chart, hbar_chart, line_chart, palette_colour

__all__ = ["render_html"]

WIDTH = 940
_KINDS = {"reply_to_review": "review replies", "create_promo_code": "promo codes",
          "send_chat_message": "chat messages", "ops_task": "ops tasks"}
_STATUS_COLOURS = {"sent": "#2e9d5b", "approved": "#4f8fd6", "dry_run": "#8fb8e8", "pending": "#e8a33d",
                   "open": "#8a63c9", "done": "#5bb3a8", "refused": "#d0453a", "rejected": "#9b2d24",
                   "failed": "#6b7785"}
_STATE_COLOURS = {"ok": "#2e9d5b", "deferred": "#e8a33d", "error": "#d0453a", "unavailable": "#8a63c9",
                  "new": "#6b7785"}
_TIER_PALETTE = ("#c58b4e", "#9aa5b1", "#e2b93b", "#5aa0c8", "#7d5fb2", "#3a9e6e")
_NO_DATA = "No data yet"

_CSS = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#f2f4f7;color:#1f2933;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,
'Helvetica Neue',Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:28px 20px 48px}
header h1{margin:0;font-size:26px}
header .sub{color:#5f6b7a;margin:4px 0 18px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:12px;margin-bottom:22px}
.kpi{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 2px rgba(16,24,40,.08)}
.kpi .v{font-size:22px;font-weight:650}
.kpi .l{color:#5f6b7a;font-size:13px}
section{background:#fff;border-radius:12px;padding:18px 22px 20px;margin:0 0 20px;
box-shadow:0 1px 3px rgba(16,24,40,.08)}
section h2{margin:0 0 4px;font-size:20px}
h3{font-size:15px;margin:18px 0 6px}
p{margin:6px 0}
.note{color:#5f6b7a;font-size:13.5px}
.notice{background:#fff6e0;border:1px solid #f0d48a;border-radius:8px;padding:8px 12px;margin:10px 0}
.empty{background:#eef3fb;border:1px solid #c9d8f0;border-radius:10px;padding:14px 18px;margin-bottom:20px}
figure{margin:12px 0 4px}
figure svg{display:block;width:100%;height:auto}
figcaption{font-weight:600;font-size:14px;margin-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:13.5px;margin-top:8px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e9ee;vertical-align:top}
th{color:#5f6b7a;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;font-weight:600}
.err{color:#9b2d24;word-break:break-word}
footer{color:#5f6b7a;font-size:12.5px;text-align:center}
code{background:#f2f4f7;padding:0 4px;border-radius:4px}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _name(r: Report, mp: str) -> str:
    """The platform's display name (its connector's), else the name the store keeps."""
    look = r.platforms.get(mp)
    return look.display_name if look else mp


def _colour(r: Report, mp: str, index: int) -> str:
    """The platform's own colour, else the `index`-th palette colour."""
    look = r.platforms.get(mp)
    return look.colour if look and look.colour else palette_colour(index)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _int(n: float) -> str:
    return f"{n:,.0f}"


def _money(v: Decimal) -> str:
    return f"{v:,.2f} ₽"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{_e(caption)}</figcaption>{svg}</figure>"


def _chart_or_empty(caption: str, has_data: bool, draw, message: str = _NO_DATA) -> str:
    return _figure(caption, draw() if has_data else empty_chart(caption, message, width=WIDTH))


def _table(head: Iterable[tuple[str, bool]], rows: Iterable[Iterable[str]]) -> str:
    """`head` is (label, numeric); cells are already-escaped HTML."""
    head = list(head)
    ths = "".join(f'<th class="n">{_e(h)}</th>' if num else f"<th>{_e(h)}</th>" for h, num in head)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if head[i][1] else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


def _section(sid: str, title: str, intro: str, *body: str) -> str:
    return (f'<section id="{sid}"><h2>{_e(title)}</h2><p class="note">{intro}</p>' + "".join(body)
            + "</section>")


# -- sections ----------------------------------------------------------------------------------------------

def _orders(r: Report) -> str:
    o = r.orders
    labels = [d.strftime("%b %d") for d in o.days]
    every = max(1, math.ceil(len(labels) / 10))
    series = [Series(_name(r, mp), v, _colour(r, mp, i)) for i, (mp, v) in enumerate(o.by_marketplace.items())]
    caption = "Orders created per day (UTC), every status, by platform"
    chart = _chart_or_empty(caption, o.total > 0, lambda: line_chart(
        labels, series, title=caption, y_label="orders", width=WIDTH, label_every=every))
    rows = [(_e(_name(r, mp)), _int(sum(v)), f"{sum(v) / len(o.days):.1f}") for mp, v in o.by_marketplace.items()]
    table = _table([("platform", False), ("orders", True), ("per day", True)], rows) if rows else ""
    return _section("orders", "Orders per day", f"{_int(o.total)} orders created in the period.", chart, table)


def _repeat(r: Report) -> str:
    rows = [x for x in r.repeat.rows if x.identity and x.buyers]
    cats = [f"{_name(r, x.marketplace)}: {_pct(x.repeat_buyers, x.buyers)} of {x.buyers} buyers" for x in rows]
    caption = "Repeat-purchase rate: buyers with 2+ orders in the period (only orders with a buyer key)"
    rate = _chart_or_empty(caption, bool(rows), lambda: hbar_chart(
        cats, [Series("bought once", [x.buyers - x.repeat_buyers for x in rows], "#b8c4d2"),
               Series("bought again", [x.repeat_buyers for x in rows], "#2e9d5b")],
        title=caption, x_label="buyers", width=WIDTH),
        "No orders with a buyer key in this period")
    gap_rows = [x for x in rows if sum(x.gaps)]
    caption2 = "Time between consecutive purchases of the same buyer (orders with a buyer key, in the period)"
    gaps = _chart_or_empty(caption2, bool(gap_rows), lambda: bar_chart(
        list(r.repeat.buckets), [Series(_name(r, x.marketplace), x.gaps, _colour(r, x.marketplace, i))
                                 for i, x in enumerate(gap_rows)],
        title=caption2, y_label="repeat purchases", width=WIDTH, height=260),
        "No buyer ordered twice in this period")
    notes = []
    for x in r.repeat.rows:
        if not x.identity:
            notes.append(f'<p class="notice"><b>{_e(_name(r, x.marketplace))} has no buyer identity</b>: the platform '
                         f"never says who the buyer is, so repeat purchases and the time between them cannot be "
                         f"measured there ({_int(x.orders)} orders in the period are not counted).</p>")
        elif x.keyless_orders:
            notes.append(f'<p class="note">{_e(_name(r, x.marketplace))}: {_int(x.keyed_orders)} of {_int(x.orders)} '
                         f"orders ({_pct(x.keyed_orders, x.orders)}) carry a buyer key; the figures cover those "
                         f"only. Median gap: {_days(x.median_gap_days)}.</p>")
        else:
            notes.append(f'<p class="note">{_e(_name(r, x.marketplace))}: every order carries a buyer key. '
                         f"Median gap: {_days(x.median_gap_days)}.</p>")
    intro = ("Counted over orders that are not cancelled. A buyer is one buyer key on one platform account; "
             "buyer keys are never shown.")
    return _section("repeat", "Repeat purchases", intro, *notes, rate, gaps)


def _days(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} days"


def _reviews(r: Report) -> str:
    f = r.reviews
    mps = list(f.ratings)
    caption = "Reviews created in the period, by star rating"
    ratings = _chart_or_empty(caption, f.total > 0, lambda: bar_chart(
        [f"{i}★" for i in range(1, 6)],
        [Series(_name(r, mp), f.ratings[mp], _colour(r, mp, i)) for i, mp in enumerate(mps)],
        title=caption, y_label="reviews", width=WIDTH, height=260))
    target = _days_text(f.target)
    caption2 = (f"Reply status of these reviews now: answered, or unanswered for less / more than the reply target of "
                f"{target} (the store records whether a review is answered, not when)")
    cats = [f"{_name(r, mp)}: {_pct(f.answered[mp], sum(f.ratings[mp]))} answered" for mp in mps]
    status = _chart_or_empty(caption2, f.total > 0, lambda: hbar_chart(
        cats, [Series("answered", [f.answered[mp] for mp in mps], "#2e9d5b"),
               Series(f"unanswered, under {target}", [f.waiting[mp] for mp in mps], "#e8a33d"),
               Series(f"unanswered, over {target}", [f.overdue[mp] for mp in mps], "#d0453a")],
        title=caption2, x_label="reviews", width=WIDTH))
    parts = [ratings, status]
    if f.replies_timed:
        caption3 = (f"Time from review to reply, for the {f.replies_timed} replies loyalsync sent itself "
                    "(outbox sent_at − review created_at)")
        timed = [Series(_name(r, mp), v, _colour(r, mp, i)) for i, (mp, v) in enumerate(f.reply_times.items())]
        parts.append(_figure(caption3, bar_chart(
            list(f.buckets), timed, title=caption3, y_label="replies", width=WIDTH, height=240)))
    else:
        parts.append('<p class="note">No reply times to show: loyalsync has sent no review replies for reviews of '
                     "this period, and the platforms do not report when a reply was posted in the seller cabinet.</p>")
    if f.low_rated:
        rows = [(_e(_name(r, p.marketplace)), _e(p.name), _int(p.low), _int(p.reviews), f"{p.average:.1f}")
                for p in f.low_rated]
        parts.append("<h3>Products with the most 1–2★ reviews in the period</h3>" + _table(
            [("platform", False), ("product", False), ("1–2★", True), ("reviews", True), ("avg ★", True)], rows))
    total = f.total
    avg = _average(f.ratings)
    intro = f"{_int(total)} reviews created in the period" + (f", average {avg:.2f}★." if avg else ".")
    return _section("reviews", "Reviews and replies", intro, *parts)


def _average(ratings: dict[str, tuple[int, ...]]) -> float | None:
    n = sum(sum(v) for v in ratings.values())
    return sum(i * c for v in ratings.values() for i, c in enumerate(v, 1)) / n if n else None


def _days_text(td) -> str:
    hours = td.total_seconds() / 3600
    if hours % 24 == 0:
        d = int(hours // 24)
        return f"{d} days" if d != 1 else "1 day"
    return f"{hours:g} hours"


def _points(r: Report) -> str:
    p = r.points
    rows = [x for x in p.rows if x.outstanding > 0]
    cats = [f"{_name(r, x.marketplace)}: {_money(x.outstanding * p.point_value)}" for x in rows]
    caption = (f"Points outstanding now (liability), by platform: available + pending points; "
               f"1 point = {p.point_value:g} ₽")
    liability = _chart_or_empty(caption, bool(rows), lambda: hbar_chart(
        cats, [Series("available", [float(x.available) for x in rows], "#2b7bb9"),
               Series("pending (not yet settled)", [float(x.pending) for x in rows], "#9cc3e6")],
        title=caption, x_label="points", width=WIDTH),
        "No points outstanding" if p.rows else _NO_DATA)
    names = list(p.tier_names)
    members = [x for x in p.rows if x.members]
    caption2 = "Tier mix: members per tier, by platform (members = buyer keys with an order)"
    tiers = _chart_or_empty(caption2, bool(members), lambda: hbar_chart(
        [f"{_name(r, x.marketplace)}: {x.members} members" for x in members],
        [Series(t, [x.tiers.get(t, 0) for x in members],
                "#c9d1db" if t == NO_TIER else _TIER_PALETTE[i % len(_TIER_PALETTE)]) for i, t in enumerate(names)],
        title=caption2, x_label="members", width=WIDTH))
    notes = []
    if not p.enabled:
        notes.append('<p class="notice">The loyalty program is off (<code>[loyalty] enabled = false</code>): '
                     "no points are earned.</p>")
    if names == [NO_TIER]:
        notes.append('<p class="note">No tiers are configured (<code>[loyalty].tiers</code>), so every member '
                     "is shown as “no tier”.</p>")
    table = ""
    if p.rows:
        table = _table([("platform", False), ("members", True), ("available", True), ("pending", True),
                        ("outstanding", True), ("in roubles", True), ("debt", True)],
                       [(_e(_name(r, x.marketplace)), _int(x.members), _int(x.available), _int(x.pending),
                         _int(x.outstanding), _money(x.outstanding * p.point_value), _int(x.debt)) for x in p.rows])
    intro = (f"As of {_when(r.generated_at)}, not limited to the period: {_int(p.outstanding)} points outstanding, "
             f"{_money(p.outstanding_roubles)} at {p.point_value:g} ₽ per point "
             "(<code>[actions.promo].point_value</code>).")
    return _section("points", "Loyalty points and tiers", intro, liability, tiers, table, *notes)


def _actions(r: Report) -> str:
    a = r.actions
    grouped = a.by_status()
    keys = sorted(grouped)
    statuses = a.statuses()
    cats = [f"{_name(r, mp)} · {_KINDS.get(k, k)}" for mp, k in keys]
    caption = "Actions proposed in the period, by platform and kind, coloured by decision / status"
    chart = _chart_or_empty(caption, bool(keys), lambda: hbar_chart(
        cats, [Series(s, [grouped[k][s] for k in keys], _STATUS_COLOURS.get(s)) for s in statuses],
        title=caption, x_label="actions", width=WIDTH, label_width=260))
    refusals = a.refusals()
    if refusals:
        mps = sorted({mp for c in refusals.values() for mp in c})
        caption2 = "Refused by the gate, by reason"
        refused = _figure(caption2, hbar_chart(
            list(refusals), [Series(_name(r, mp), [refusals[rs][mp] for rs in refusals], _colour(r, mp, i))
                             for i, mp in enumerate(mps)], title=caption2, x_label="actions", width=WIDTH))
    else:
        refused = '<p class="note">No action was refused by the gate in this period.</p>' if keys else ""
    intro = (f"{_int(a.total)} actions in the outbox created in the period. dry_run = computed and checked, "
             "would be sent in live mode; pending = waits for a person; open = a task for a person.")
    return _section("actions", "Actions by decision", intro, chart, refused)


def _sync(r: Report) -> str:
    s = r.streams
    cats = [f"{_name(r, x.marketplace)}/{x.account} · {x.stream} ({x.state})" for x in s]
    caption = "Records written per stream since it started, and records quarantined (state in brackets)"
    chart = _chart_or_empty(caption, bool(s), lambda: hbar_chart(
        cats, [Series("records written", [x.records for x in s], "#2b7bb9"),
               Series("quarantined", [x.quarantined for x in s], "#d0453a")],
        title=caption, x_label="records", width=WIDTH, label_width=320), "No stream has run yet")
    rows = [(_e(f"{_name(r, x.marketplace)}/{x.account}"), _e(x.stream),
             f'<span class="badge" style="background:{_STATE_COLOURS.get(x.state, "#6b7785")}">{_e(x.state)}</span>',
             _e(_when(x.last_success_at)), _int(x.records), _int(x.quarantined),
             f'<span class="err">{_e(x.last_error)}</span> <span class="note">({_e(_when(x.last_error_at))})</span>'
             if x.last_error else "—") for x in s]
    table = _table([("account", False), ("stream", False), ("state", False), ("last success", False),
                    ("records", True), ("quarantined", True), ("last error", False)], rows) if rows else ""
    ok = sum(1 for x in s if x.state == "ok")
    intro = f"{ok} of {len(s)} streams ok at their last run." if s else "No stream has run yet."
    return _section("sync", "Sync health", intro, chart, table)


def _kpis(r: Report) -> str:
    keyed = [x for x in r.repeat.rows if x.identity]
    buyers = sum(x.buyers for x in keyed)
    again = sum(x.repeat_buyers for x in keyed)
    f = r.reviews
    overdue = sum(f.overdue.values())
    ok = sum(1 for x in r.streams if x.state == "ok")
    avg = _average(f.ratings)
    cards = [
        (_int(r.orders.total), "orders in the period"),
        (_pct(again, buyers), f"repeat buyers ({buyers} identified)"),
        (_int(f.total), "reviews in the period"),
        (f"{avg:.2f}★" if avg else "—", "average rating"),
        (_int(overdue), f"reviews unanswered over {_days_text(f.target)}"),
        (_money(r.points.outstanding_roubles), "points outstanding"),
        (_int(r.actions.total), "actions in the period"),
        (f"{ok}/{len(r.streams)}", "streams ok"),
    ]
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><div class="v">{_e(v)}</div><div class="l">{_e(label)}</div></div>' for v, label in cards
    ) + "</div>"


def render_html(report: Report) -> str:
    """The whole page."""
    period = f"{report.period.start.isoformat()} – {report.period.end.isoformat()}"
    title = f"loyalsync report · {period}"
    empty = ""
    if report.empty:
        empty = ('<div class="empty"><b>No data yet.</b> The store holds no orders, reviews, points, actions or '
                 "sync runs. Run <code>loyalsync sync --once</code> (or <code>loyalsync demo</code>) and "
                 "write the report again.</div>")
    body = "".join((_orders(report), _repeat(report), _reviews(report), _points(report), _actions(report),
                    _sync(report)))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>Seller report</h1><p class=\"sub\">{_e(period)} (UTC days) · generated "
        f"{_e(_when(report.generated_at))} from the loyalsync store · aggregates only, no buyer data</p></header>"
        f"{empty}{_kpis(report)}{body}"
        "<footer>Written by <code>loyalsync report</code>. Charts are inline SVG; hover a mark for its value.</footer>"
        "</main></body></html>\n"
    )
