"""The emulator's orders: each one's fate and step times, and its `BusinessOrderDTO` at any moment.

Generated once from a seed and kept column-wise; JSON is built only for the records of a page.
Statuses are not stored: each order has a fate and the times of its steps, and what the API shows
is computed from the request's "now", so the same data seen later has moved on.

Every record follows the official `BusinessOrderDTO` (yandex_market.md §3, checked by
tests/connectors/yandex_market/test_emulator_schema.py): a `substatus` on every order, a
`delivery` with `deliveryServiceId` and `deliveryPartnerType`, and a DBS address only under
`delivery.courier.address` (or a shop outlet's under `delivery.pickup.address`), never with the
buyer's name or phone. Variety that the seed's random stream did not draw (payment, openings,
cancel reasons, delivery details) is derived from the order id, so every seed keeps its orders.
"""

from __future__ import annotations

import random
import time
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.yandex_market.emulator_data import Buyers

__all__ = [
    "ACTIVE", "CAMPAIGNS", "DAY", "MSK_OFFSET", "OFFERS", "OrderTable", "Step", "market_iso", "mix", "msk_date",
]

DAY = 86400
MSK_OFFSET = 3 * 3600
ACTIVE = frozenset({"PROCESSING", "DELIVERY", "PICKUP"})
RETURNS = frozenset({"RETURNED", "PARTIALLY_RETURNED"})
PROGRAMS = ("FBS", "FBY", "DBS", "EXPRESS")
CAMPAIGNS = {"FBS": 21500001, "FBY": 21500002, "DBS": 21500003, "EXPRESS": 21500004}
_PROGRAM_WEIGHTS = (45, 20, 25, 10)
# Fates: 0 delivered, 1 cancelled by the buyer before shipping, 2 cancelled by the shop,
# 3 cancelled in delivery (refused or undelivered), 4 returned, 5 partially returned.
_FATE_WEIGHTS = (76, 8, 4, 5, 4, 3)
_M64 = (1 << 64) - 1
OFFERS = (  # offerId stem, name, list price in roubles
    ("LAMP-G4", "Лампа галогеновая G4 20Вт", 119), ("KETTLE-17", "Чайник электрический 1.7 л", 2490),
    ("TOWEL-70", "Полотенце махровое 70x140", 899), ("MUG-350", "Кружка керамическая 350 мл", 459),
    ("CABLE-C", "Кабель USB-C 1 м", 349), ("PAN-28", "Сковорода с антипригарным покрытием 28 см", 3190),
    ("SOCKS-5", "Носки хлопковые, 5 пар", 599), ("BULB-E27", "Лампа светодиодная E27 12Вт", 189),
)
_RETURN_BASE = 8_100_000  # return ids are this plus the order's row: distinct, and easy to invert
# OrderSubstatusType names substatuses for PROCESSING and CANCELLED only and says other values
# may come; none is documented for a return, so returns carry UNKNOWN ("other values ... need
# no processing"). The delivery ones are the enum's own names for those steps.
_BUYER_CANCELS = ("USER_CHANGED_MIND", "USER_REFUSED_PRODUCT", "REPLACING_ORDER", "USER_PLACED_OTHER_ORDER",
                  "USER_BOUGHT_CHEAPER")
_SHOP_CANCELS = ("SHOP_FAILED", "SHOP_FAILED", "MISSING_ITEM")
_DELIVERY_CANCELS = ("USER_REFUSED_DELIVERY", "DELIVERY_SERVICE_UNDELIVERED", "USER_UNREACHABLE")
# Delivery services: invented ids, as in the official-shape example getBusinessOrders.response.json
# (Market's logistics for FBS/FBY/Express, the shop's own for DBS).
_MARKET_SERVICE, _SHOP_SERVICE = 1005471, 99
_STREETS = ("Тверская улица", "Профсоюзная улица", "Ленинский проспект", "улица Арбат", "Садовая-Кудринская улица")


def _moscow() -> dict[str, Any]:
    """`RegionDTO` of Moscow, a new dict each time (payload faults edit answers in place)."""
    return {"id": 213, "name": "Москва", "type": "CITY",
            "parent": {"id": 1, "name": "Москва и Московская область", "type": "REPUBLIC"}}


def mix(x: int) -> int:
    """splitmix64 finalizer: a bijection on 64-bit ints, so distinct inputs give distinct ids."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def market_iso(ts: int) -> str:
    """Market's timestamps: ISO 8601 in Moscow time with +03:00."""
    t = time.gmtime(ts + MSK_OFFSET)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}+03:00"


def msk_date(ts: int) -> str:
    """The Moscow calendar date of a unix time, `YYYY-MM-DD` (Market's date filters and fields)."""
    t = time.gmtime(ts + MSK_OFFSET)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"


def _money(kop: int) -> dict[str, Any]:
    return {"value": kop / 100, "currencyId": "RUR"}


@dataclass(frozen=True, slots=True)
class Step:
    at: int  # unix seconds
    status: str
    substatus: str


class OrderTable:
    """Orders sorted by creation time (and so by orderId)."""

    def __init__(self, seed: int, buyers: Buyers, n: int, start: int, span: int, dbs_share: float):
        rng = random.Random(seed)
        r = rng.random
        self.buyers = buyers
        self.created = array("q", sorted(start + int(r() * span) for _ in range(n)))
        ids, next_id = array("q"), 55_113_000_000 + rng.randrange(1_000_000)
        for _ in range(n):
            next_id += 1 + int(r() * 9)
            ids.append(next_id)
        self.ids = ids
        rest = 1 - dbs_share
        weights = [w * rest / (100 - _PROGRAM_WEIGHTS[2]) for w in _PROGRAM_WEIGHTS]
        weights[2] = dbs_share
        self.program = array("B", rng.choices(range(len(PROGRAMS)), weights=weights, k=n))
        self.buyer = array("I", (rng.randrange(len(buyers)) for _ in range(n)))
        self.fate = array("B", rng.choices(range(len(_FATE_WEIGHTS)), weights=_FATE_WEIGHTS, k=n))
        self.pickup = array("B", (r() < 0.6 for _ in range(n)))
        # Step times after creation: ready to ship, handed to delivery, at the pickup point,
        # delivered, and the fate's own moment (cancel or return).
        self.steps = [self._times(r, self.fate[i]) for i in range(n)]
        self.lines: list[tuple[tuple[int, int, int, int], ...]] = [
            tuple(self._line(rng) for _ in range(1 + int(r() ** 2 * 3))) for _ in range(n)
        ]
        # A partial return needs an order of two units at least: a single unit becomes two (no
        # draw from `rng`, so every other order of the seed stays as it was).
        for i in range(n):
            if self.fate[i] == 5 and len(self.lines[i]) == 1 and self.lines[i][0][1] == 1:
                offer, _, unit, cashback = self.lines[i][0]
                self.lines[i] = ((offer, 2, unit, cashback),)
            if PROGRAMS[self.program[i]] == "EXPRESS":
                self.pickup[i] = 0  # Express is courier delivery
        self.notes = array("B", (r() < 0.1 for _ in range(n)))

    @staticmethod
    def _times(r: Any, fate: int) -> tuple[int, int, int, int, int]:
        ready = 1800 + int(r() * DAY)
        shipped = ready + 6 * 3600 + int(r() * 2 * DAY)
        at_point = shipped + DAY + int(r() * 2 * DAY)
        delivered = at_point + int(r() * 4 * DAY)
        end = {1: 300 + int(r() * (ready - 300)), 2: 600 + int(r() * (shipped - 600)),
               3: shipped + int(r() * (delivered - shipped)) + 1,
               4: delivered + 2 * DAY + int(r() * 8 * DAY), 5: delivered + 2 * DAY + int(r() * 8 * DAY)}
        return ready, shipped, at_point, delivered, end.get(fate, delivered)

    @staticmethod
    def _line(rng: random.Random) -> tuple[int, int, int, int]:
        """(offer, count, unit price in kopecks, Plus-points share of the unit price in kopecks)."""
        offer = rng.randrange(len(OFFERS))
        unit = round(OFFERS[offer][2] * 100 * rng.uniform(0.7, 1.0))
        cashback = 0 if rng.random() < 0.7 else rng.randrange(1, max(2, unit // 1000)) * 100
        return offer, rng.choice((1, 1, 1, 2, 3)), unit, min(cashback, unit)

    def __len__(self) -> int:
        return len(self.ids)

    def _variant(self, i: int, salt: int) -> int:
        """A number fixed by the order id: variety without a draw from the seed's stream."""
        return mix(self.ids[i] * 131 + salt)

    def program_of(self, i: int) -> str:
        return PROGRAMS[self.program[i]]

    def campaign_of(self, i: int) -> int:
        return CAMPAIGNS[self.program_of(i)]

    def index_of_id(self, order_id: int) -> int | None:
        k = bisect_right(self.ids, order_id) - 1
        return k if k >= 0 and self.ids[k] == order_id else None

    def visible_end(self, now: int) -> int:
        """One past the last order created at or before `now`."""
        return bisect_right(self.created, now)

    def created_between(self, lo: int, hi: int) -> range:
        """Rows of the orders created in [lo, hi) (unix seconds)."""
        return range(bisect_left(self.created, lo), bisect_left(self.created, hi))

    def postpaid(self, i: int) -> bool:
        """Some DBS orders are paid on delivery; every other order is paid when placed."""
        return self.program_of(i) == "DBS" and self._variant(i, 1) % 4 == 0

    def _opening(self, i: int) -> list[Step]:
        """The steps before PROCESSING/STARTED: a prepaid order may wait for its payment (UNPAID),
        a DBS order for the shop's confirmation (PENDING); both last minutes. Some buyers who
        would cancel anyway never pay: the order ends UNPAID (see `history`)."""
        c, v = self.created[i], self._variant(i, 2)
        wait = 120 + v % 900
        if self.program_of(i) == "DBS" and v % 10 == 0:
            return [Step(c, "PENDING", "AWAIT_CONFIRMATION"), Step(c + wait, "PROCESSING", "STARTED")]
        if not self.postpaid(i) and v % 10 in (1, 2):
            if self.fate[i] == 1 and v % 3 == 0:
                return [Step(c, "UNPAID", "AWAIT_PAYMENT")]
            return [Step(c, "UNPAID", "AWAIT_PAYMENT"), Step(c + wait, "PROCESSING", "STARTED")]
        return [Step(c, "PROCESSING", "STARTED")]

    def history(self, i: int) -> list[Step]:
        """Every step of the order's life, past and future."""
        c, fate = self.created[i], self.fate[i]
        ready, shipped, at_point, delivered, end = self.steps[i]
        opening = self._opening(i)
        if opening[-1].status == "UNPAID":  # "USER_NOT_PAID: not paid within 30 minutes"
            return [*opening, Step(c + 1800, "CANCELLED", "USER_NOT_PAID")]
        steps = [*opening, Step(c + ready, "PROCESSING", "READY_TO_SHIP"),
                 Step(c + shipped, "DELIVERY", "DELIVERY_SERVICE_RECEIVED")]
        if self.pickup[i]:
            steps.append(Step(c + at_point, "PICKUP", "PICKUP_SERVICE_RECEIVED"))
        steps.append(Step(c + delivered, "DELIVERED", "DELIVERY_SERVICE_DELIVERED"))
        if fate in (1, 2, 3):
            steps = [s for s in steps if s.at < c + end]
            steps.append(Step(c + end, "CANCELLED", self._cancel_reason(i, fate, steps[-1])))
        elif fate in (4, 5):
            steps.append(Step(c + end, "RETURNED" if fate == 4 else "PARTIALLY_RETURNED", "UNKNOWN"))
        return steps

    def _cancel_reason(self, i: int, fate: int, last: Step) -> str:
        """OrderSubstatusType's cancel reason for a cancel that came after step `last`."""
        pick = self._variant(i, 3)
        if last.status == "UNPAID":
            return "USER_NOT_PAID"
        if last.status == "PENDING":
            return "SHOP_PENDING_CANCELLED"
        if fate == 1:
            return _BUYER_CANCELS[pick % len(_BUYER_CANCELS)]
        if fate == 2:
            return _SHOP_CANCELS[pick % len(_SHOP_CANCELS)]
        return "PICKUP_EXPIRED" if last.status == "PICKUP" else _DELIVERY_CANCELS[pick % len(_DELIVERY_CANCELS)]

    def state(self, i: int, now: int) -> Step:
        """The step in force at `now` (its `at` is the order's updateDate)."""
        current = None
        for step in self.history(i):
            if step.at > now:
                break
            current = step
        assert current is not None, "an order is never shown before it exists"
        return current

    def return_late(self, i: int, at: int) -> None:
        """A delivered order comes back at `at` (the `late_change` fault): partially where it
        has two units or more and its id is even, wholly otherwise."""
        units = sum(count for _, count, _, _ in self.lines[i])
        self.fate[i] = 5 if units > 1 and self.ids[i] % 2 == 0 else 4
        ready, shipped, at_point, delivered, _ = self.steps[i]
        self.steps[i] = (ready, shipped, at_point, delivered, at - self.created[i])

    def total_kop(self, i: int) -> int:
        """What the buyer paid for the goods (money plus Plus points), in kopecks."""
        return sum(count * unit for _, count, unit, _ in self.lines[i])

    def returned_units(self, i: int) -> tuple[int, ...]:
        """Units of each line the buyer sends back: all of them for a return (fate 4), at least
        one but not all for a partial return (fate 5), none otherwise. Derived from the order id."""
        fate, lines = self.fate[i], self.lines[i]
        if fate == 4:
            return tuple(count for _, count, _, _ in lines)
        if fate != 5:
            return (0,) * len(lines)
        units = sum(count for _, count, _, _ in lines)
        left = 1 + mix(self.ids[i]) % (units - 1)  # 1 .. units - 1
        out = []
        for _, count, _, _ in lines:
            back = min(count, left)
            out.append(back)
            left -= back
        return tuple(out)

    def returned_kop(self, i: int, now: int) -> int:
        """What the goods back with the seller at `now` are worth (money plus Plus points), in kopecks."""
        if self.state(i, now).status not in RETURNS:
            return 0
        return sum(back * unit for back, (_, _, unit, _) in zip(self.returned_units(i), self.lines[i], strict=True))

    def return_id(self, i: int) -> int:
        """The id of the order's return (it exists once the order is RETURNED or PARTIALLY_RETURNED)."""
        return _RETURN_BASE + i

    def index_of_return(self, return_id: int, now: int) -> int | None:
        """The order of a return visible at `now`, or None."""
        i = return_id - _RETURN_BASE
        if not 0 <= i < self.visible_end(now):
            return None
        return i if self.state(i, now).status in RETURNS else None

    def record(self, i: int, now: int) -> dict[str, Any]:
        """`BusinessOrderDTO` as seen at `now`."""
        step, program = self.state(i, now), self.program_of(i)
        items, pay, cash, subsidy = self._items(i, step)
        postpaid = self.postpaid(i)
        record = {
            "orderId": self.ids[i], "campaignId": self.campaign_of(i), "programType": program,
            "externalOrderId": f"A-{self.ids[i] % 1_000_000}", "status": step.status,
            "substatus": step.substatus, "creationDate": market_iso(self.created[i]),
            "updateDate": market_iso(step.at), "paymentType": "POSTPAID" if postpaid else "PREPAID",
            "paymentMethod": "CARD_ON_DELIVERY" if postpaid else "YANDEX", "fake": False, "items": items,
            "prices": {"payment": _money(pay), "subsidy": _money(subsidy), "cashback": _money(cash),
                       "delivery": {"payment": _money(0), "subsidy": _money(0)}},
            "delivery": self._delivery(i, now),
            "buyerType": "BUSINESS" if self._variant(i, 4) % 20 == 0 else "PERSON",
            "notes": f"Позвоните за час: {self.buyers.phone(self.buyer[i])}" if self.notes[i] else "",
            "sourcePlatform": "MARKET",
        }
        if program == "DBS":
            record["cancelRequested"] = False
        return record

    def _items(self, i: int, step: Step) -> tuple[list[dict[str, Any]], int, int, int]:
        """`BusinessOrderItemDTO`s (returned units in `itemStatuses`) and the order's payment,
        cashback and subsidy in kopecks."""
        returned = self.returned_units(i) if step.status in RETURNS else None
        # Some partial returns are refused at the pickup point (REJECTED), the rest sent back.
        why = "REJECTED" if returned and step.status == "PARTIALLY_RETURNED" and self.ids[i] % 4 == 0 \
            else "RETURNED"
        items, pay, cash, subsidy = [], 0, 0, 0
        for k, (offer, count, unit, cashback) in enumerate(self.lines[i]):
            stem, name, _ = OFFERS[offer]
            pay += (unit - cashback) * count
            cash += cashback * count
            subsidy += unit * count // 20
            items.append({
                "id": int(self.ids[i] % 10**9) * 10 + k, "offerId": f"SKU-{stem}", "offerName": name,
                "count": count,
                "prices": {"payment": _money((unit - cashback) * count), "subsidy": _money(unit * count // 20),
                           "cashback": _money(cashback * count), "vat": "VAT_22"},
            })
            if returned is not None:  # OrderItemUnitStatusDTO: what became of the line's units
                units = [{"count": returned[k], "status": why}] if returned[k] else []
                if count > returned[k]:
                    units.append({"count": count - returned[k], "status": "DELIVERED_TO_BUYER"})
                items[-1]["itemStatuses"] = units
        return items, pay, cash, subsidy

    def _delivery(self, i: int, now: int) -> dict[str, Any]:
        """`BusinessOrderDeliveryDTO`: Market's logistics (FBS, FBY, Express) or the shop's (DBS)."""
        c, pickup, program = self.created[i], self.pickup[i], self.program_of(i)
        ready, shipped, _, delivered, _ = self.steps[i]
        dates: dict[str, Any] = {"fromDate": msk_date(c + shipped), "toDate": msk_date(c + delivered)}
        if not pickup:
            dates.update(fromTime="10:00", toTime="18:00")  # times only for type DELIVERY
        if self.fate[i] in (0, 4, 5) and c + delivered <= now:  # it reached the buyer
            dates["realDeliveryDate"] = msk_date(c + delivered)
        delivery: dict[str, Any] = {"type": "PICKUP" if pickup else "DELIVERY"}
        if program == "DBS":
            delivery.update(serviceName="Доставка магазина", deliveryServiceId=_SHOP_SERVICE,
                            deliveryPartnerType="SHOP", dispatchType="SHOP_OUTLET" if pickup else "BUYER",
                            dates=dates)
            where = {"address": self._address(i, outlet=bool(pickup)), "region": _moscow()}
            if pickup:
                where["outletCode"] = f"OUTLET-{1 + self._variant(i, 5) % 5}"
            delivery["pickup" if pickup else "courier"] = where
            return delivery
        delivery.update(serviceName="Маркет", deliveryServiceId=_MARKET_SERVICE, deliveryPartnerType="YANDEX_MARKET",
                        dispatchType="MARKET_BRANDED_OUTLET" if pickup else "BUYER", dates=dates)
        if pickup:
            delivery["pickup"] = {"logisticPointId": 10_000_000 + self._variant(i, 5) % 5000, "region": _moscow()}
        if program != "FBY":  # the seller hands FBS and Express parcels over; FBY ships from Market's stock
            delivery["shipment"] = {"id": 4_400_000 + i, "shipmentDate": msk_date(c + ready)}
        return delivery

    def _address(self, i: int, *, outlet: bool) -> dict[str, Any]:
        """`BusinessOrderDeliveryAddressDTO`: a shop outlet's, or the DBS buyer's own (personal data:
        the connector never stores it). It has no recipient and no phone in this DTO."""
        v = self._variant(i, 6 if outlet else 7)
        address: dict[str, Any] = {"country": "Россия", "postcode": f"1{v % 100000:05d}", "city": "Москва",
                                   "street": _STREETS[v % len(_STREETS)], "house": str(1 + v % 40)}
        if not outlet:
            address.update(entrance=str(1 + v % 6), floor=str(1 + v % 17), apartment=str(1 + v % 120),
                           gps={"latitude": 55.6 + (v % 3000) / 10000, "longitude": 37.4 + (v % 4000) / 10000})
        return address
