"""The Wildberries emulator's orders: FBS and FBO, their fates over time, in parallel columns.

Everything is generated once from a seed and stored column-wise in `array`s (about 55 bytes per
order), so a million orders fit in memory; JSON dicts are built only for the records of a page.
Statuses are not stored: they are computed from an order's age at the request's "now".
"""

from __future__ import annotations

import heapq
import itertools
import random
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Any

from connectors.wildberries.emulator_values import DAY, MAX_CONFIRM, Product, Warehouse, iso_utc, mix, msk

__all__ = ["Fate", "OrderTable", "Variant"]


class Fate:
    """How an order ends; the end happens `t3` seconds after creation."""

    SOLD = 0
    DECLINED = 1  # buyer cancelled within the first hour, before the seller confirmed
    SELLER_CANCEL = 2
    WB_CANCEL = 3
    REFUSED = 4  # buyer refused on receipt
    CANCELLED = frozenset({DECLINED, SELLER_CANCEL, WB_CANCEL, REFUSED})


_FATE_WEIGHTS = (74, 6, 4, 3, 13)  # sold / declined / seller / WB / refused


class Variant:
    """How an FBS order travels, which decides the wbStatus words it passes through."""

    LOCAL = 0  # sorted -> ready_for_pickup -> sold / canceled_by_client; a WB cancel is "canceled"
    CROSS_BORDER = 1  # crossBorderType 1: accepted_by_carrier -> sent_to_carrier; carrier cancels
    COURIER = 2  # delivered by courier: postponed_delivery instead of ready_for_pickup
    DEFECT = 3  # a WB cancellation or a refusal is "defect" (cancelled because of a defect)
    ONE_IN = 25  # variants 1..3 are each 1 order in 25; the rest are LOCAL


_FBS_WAREHOUSES = (
    Warehouse(1140223, "Склад продавца Химки", 507, "Коледино"),
    Warehouse(1140231, "Склад продавца Казань", 1193, "Казань"),
    Warehouse(658434, "Склад продавца Подольск", 123, "Подольск"),
)
_FBO_WAREHOUSES = ("Коледино", "Подольск", "Электросталь", "Казань", "Краснодар", "Новосибирск")
_REGIONS = (
    ("Центральный федеральный округ", "Московская"),
    ("Центральный федеральный округ", "Москва"),
    ("Северо-Западный федеральный округ", "Санкт-Петербург"),
    ("Приволжский федеральный округ", "Республика Татарстан"),
    ("Южный федеральный округ", "Краснодарский край"),
    ("Уральский федеральный округ", "Свердловская"),
    ("Сибирский федеральный округ", "Новосибирская"),
)
_COMMENTS = ("Упакуйте в плёнку, пожалуйста", "Позвоните перед доставкой")


def _timings(r: Any, fate: int) -> tuple[int, int, int]:
    """Seconds after creation of: seller confirm, WB sorting, and the final event."""
    t1 = 3600 + int(r() * (MAX_CONFIRM - 3600))  # the seller confirms within a day
    t2 = t1 + 6 * 3600 + int(r() * 42 * 3600)  # WB sorts it 6..48 h later
    if fate == Fate.DECLINED:
        t3 = 60 + int(r() * 3480)
        t1 = max(t1, t3 + 60)  # "declined_by_client" happens before confirm by definition
    elif fate == Fate.SELLER_CANCEL:
        t3 = 600 + int(r() * (t2 - 600))
    elif fate == Fate.WB_CANCEL:
        t3 = t1 + int(r() * (t2 - t1 + 2 * DAY))
    else:  # sold or refused at the pickup point 1..7 days after sorting
        t3 = t2 + DAY + int(r() * 6 * DAY)
    return t1, t2, t3


class OrderTable:
    """All orders (FBS and FBO) as parallel columns, sorted by createdAt and id."""

    def __init__(self, seed: int, products: list[Product], n: int, start: int, span: int):
        rng = random.Random(seed)
        r = rng.random
        self.products = products
        self._salt = mix(seed)
        created = sorted(start + int(r() * span) for _ in range(n))
        cart = list(range(n))
        for i in range(1, n):
            if r() < 0.12:  # same cart as the previous order: same second, same orderUid/gNumber
                created[i], cart[i] = created[i - 1], cart[i - 1]
        self.created = array("q", created)
        self.cart = array("i", cart)
        del created, cart
        next_id = 3_400_000_000 + rng.randrange(1_000_000)
        ids = array("q", bytes(8 * n))
        for i in range(n):
            next_id += 1 + int(r() * 6)
            ids[i] = next_id
        self.ids = ids
        self.fbo = array("b", (r() < 0.3 for _ in range(n)))
        self.product = array("H", rng.choices(range(len(products)), k=n))
        self.spp = array("B", rng.choices((0, 5, 12, 17, 26, 30), k=n))
        self.region = array("B", rng.choices(range(len(_REGIONS)), k=n))
        self.warehouse = array("B", (
            int(r() * (len(_FBO_WAREHOUSES) if f else len(_FBS_WAREHOUSES))) for f in self.fbo
        ))
        fates = rng.choices(range(5), weights=_FATE_WEIGHTS, k=n)
        self.t1, self.t2, self.t3 = array("I"), array("I"), array("I")
        for i, fate in enumerate(fates):
            if fate == Fate.SELLER_CANCEL and self.fbo[i]:
                fates[i] = fate = Fate.WB_CANCEL  # FBO goods never pass through the seller
            a, b, c = _timings(r, fate)
            self.t1.append(a)
            self.t2.append(b)
            self.t3.append(c)
        self.fate = array("B", fates)
        del fates
        self._index_cancellations()

    def __len__(self) -> int:
        return len(self.ids)

    # --- identities derived from the index, so they cost no memory ---
    def rid(self, i: int) -> str:
        """Marketplace `rid` == Statistics `srid`: 32 hex digits, unique per order."""
        return f"{mix(self._salt + i):016x}{mix(self._salt ^ (i << 1)):016x}"

    def order_uid(self, i: int) -> str:
        """Marketplace `orderUid`, shared by the orders of one cart."""
        c = self.cart[i]
        return f"{10_000_000 + mix(c) % 90_000_000}_{mix(self._salt + c + 7):016x}{mix(c):016x}"

    def g_number(self, i: int) -> str:
        """Statistics `gNumber`, shared by the orders of one cart."""
        return str(10**18 + mix(self._salt ^ self.cart[i]) % (8 * 10**18))

    def index_of_id(self, order_id: int) -> int | None:
        """Row of an assembly-order id (FBO rows have ids too, which WB never shows)."""
        k = bisect_left(self.ids, order_id)
        return k if k < len(self.ids) and self.ids[k] == order_id else None

    def visible_end(self, now: int) -> int:
        """Index one past the last order created at or before `now`."""
        return bisect_right(self.created, now)

    # --- time evolution ---
    def cancelled_at(self, i: int, now: int) -> int | None:
        """When the order was cancelled, if that is already visible at `now`."""
        if self.fate[i] in Fate.CANCELLED:
            ts = self.created[i] + self.t3[i]
            if ts <= now:
                return ts
        return None

    def last_change(self, i: int, now: int) -> int:
        """Statistics' lastChangeDate at `now` (unix seconds): the cancellation once visible, else creation."""
        cancel = self.cancelled_at(i, now)
        return cancel if cancel is not None else self.created[i]

    def status(self, i: int, now: int) -> tuple[str, str]:
        """(supplierStatus, wbStatus) as seen at `now` (the words of POST /api/v3/orders/status)."""
        age, fate = now - self.created[i], self.fate[i]
        t1, t2, t3 = self.t1[i], self.t2[i], self.t3[i]
        # A cancellation freezes the seller-side stage at the moment it happened.
        seen = min(age, t3) if fate in Fate.CANCELLED else age
        sup = "new" if seen < t1 else "confirm" if seen < t2 else "complete"
        variant = self.variant(i)
        if age >= t3:
            return self._final(fate, sup, variant)
        if age < t2:
            return sup, "waiting"
        if variant == Variant.CROSS_BORDER:  # handed to the carrier in the seller's country
            return sup, "accepted_by_carrier" if age < self.arrival(i) else "sent_to_carrier"
        if age < self.arrival(i) or fate not in (Fate.SOLD, Fate.REFUSED):
            return sup, "sorted"
        return sup, "postponed_delivery" if variant == Variant.COURIER else "ready_for_pickup"

    @staticmethod
    def _final(fate: int, sup: str, variant: int) -> tuple[str, str]:
        if fate == Fate.SOLD:
            return "complete", "sold"
        if fate == Fate.SELLER_CANCEL:
            return "cancel", "canceled"
        if variant == Variant.CROSS_BORDER and fate in (Fate.WB_CANCEL, Fate.REFUSED):
            return "cancel_carrier", "canceled_by_carrier"  # WB: "for crossborder only"
        if variant == Variant.DEFECT and fate in (Fate.WB_CANCEL, Fate.REFUSED):
            return sup, "defect"  # WB cancels it for a defect, found at WB or on receipt
        return sup, {Fate.DECLINED: "declined_by_client", Fate.WB_CANCEL: "canceled",
                     Fate.REFUSED: "canceled_by_client"}[fate]

    def variant(self, i: int) -> int:
        """How an FBS order travels (`Variant`); derived from its row, so it costs no memory."""
        if self.fbo[i]:
            return Variant.LOCAL
        return mix(self._salt ^ (i * 131)) % Variant.ONE_IN

    def arrival(self, i: int) -> int:
        """Seconds after creation at which a sorted order reaches the pickup point (or courier)."""
        t2, t3 = self.t2[i], self.t3[i]
        return t3 - min(DAY, max(0, t3 - t2) // 2)

    def apply_late_change(self, change: int, age: int, times: int) -> dict[int, tuple[str, str]]:
        """Give `times` FBS orders created about `age` s before `change` a refusal at `change`.

        Each waited at the pickup point until then (a parcel that sat there for weeks): before
        `change` Marketplace says complete/ready_for_pickup and Statistics isCancel false; from
        `change` on, complete/canceled_by_client and isCancel with cancelDate = `change`.
        Returns {index: (status before, status after)} as "supplierStatus/wbStatus".
        """
        target = change - age
        chosen: dict[int, tuple[str, str]] = {}
        for i in self._nearest(target):
            if len(chosen) == times:
                break
            if self.fbo[i] or self.variant(i) != Variant.LOCAL or self.created[i] + self.t2[i] >= change - DAY:
                continue
            self.fate[i], self.t3[i] = Fate.REFUSED, change - self.created[i]
            before = self.status(i, change - 1)
            chosen[i] = ("/".join(before), "/".join(self.status(i, change)))
        self._index_cancellations()
        return chosen

    def _nearest(self, target: int) -> Iterator[int]:
        """Row indices by distance of their creation time from `target`, nearest first."""
        created = self.created
        right = bisect_left(created, target)
        left = right - 1
        while left >= 0 or right < len(created):
            if right == len(created) or (left >= 0 and target - created[left] <= created[right] - target):
                yield left
                left -= 1
            else:
                yield right
                right += 1

    def _index_cancellations(self) -> None:
        """Cancellations sorted by time: the second stream of Statistics' lastChangeDate order."""
        cancelled = [i for i in range(len(self.ids)) if self.fate[i] in Fate.CANCELLED]
        cancelled.sort(key=lambda i: self.created[i] + self.t3[i])
        self.cancel_order = array("i", cancelled)
        self.cancel_ts = array("q", (self.created[i] + self.t3[i] for i in cancelled))

    def status_entry(self, i: int, now: int) -> dict[str, Any]:
        """An `orders[]` entry of POST /api/v3/orders/status.

        `isCancellable`/`isTransferable` (2026 RU spec, as generated into wildberries-sdk 0.1.177;
        wildberries.md §2a) follow the method texts: cancelling is possible until the order is in
        delivery; moving it back from delivery to assembly only while it is `complete` and still
        at WB's sorting. Which orders WB really allows is the emulator's reading.
        """
        sup, wb = self.status(i, now)
        open_ = wb in ("waiting", "sorted")
        return {"id": self.ids[i], "supplierStatus": sup, "wbStatus": wb,
                "isCancellable": sup in ("new", "confirm") and open_,
                "isTransferable": sup == "complete" and wb == "sorted"}

    # --- prices: one list price and two discounts give every unit the API shows ---
    def prices(self, i: int) -> tuple[int, int, int]:
        """(list price, price after seller discount, price after all discounts), in kopecks."""
        p = self.products[self.product[i]]
        with_disc = round(p.list_kop * (100 - p.discount) / 100)
        return p.list_kop, with_disc, round(with_disc * (100 - self.spp[i]) / 100)

    # --- records ---
    def _common(self, i: int) -> dict[str, Any]:
        p, wh = self.products[self.product[i]], _FBS_WAREHOUSES[self.warehouse[i]]
        h = mix(self._salt ^ (i * 31))
        price = self.prices(i)[2]
        return {
            "address": None, "scanPrice": None, "deliveryType": "fbs",
            "supplyId": f"WB-GI-{90_000_000 + (self.created[i] // DAY) * 8 + self.warehouse[i]}",
            "orderUid": self.order_uid(i), "article": p.article, "colorCode": "",
            "rid": self.rid(i), "createdAt": iso_utc(self.created[i]), "offices": [wh.office],
            "skus": [p.barcode], "id": self.ids[i], "warehouseId": wh.id, "officeId": wh.office_id,
            "nmId": p.nm_id, "chrtId": p.chrt_id, "price": price, "convertedPrice": price,
            "currencyCode": 643, "convertedCurrencyCode": 643, "cargoType": 1,
            "crossBorderType": 1 if self.variant(i) == Variant.CROSS_BORDER else 0,
            "comment": _COMMENTS[h % 2] if h % 25 == 0 else "", "isZeroOrder": h % 97 == 0,
            # spec-2026-08 spells it isB2B in Order and OrderNew (spec-2025-12: isB2b; wildberries.md §2a)
            "options": {"isB2B": h % 50 == 1},
        }

    def marketplace_order(self, i: int, now: int) -> dict[str, Any]:
        """`Order` of GET /api/v3/orders (no status)."""
        rec = self._common(i)
        if now - self.created[i] >= self.t2[i]:  # the acceptance price appears once WB scanned it
            rec["scanPrice"] = rec["price"]
        return rec

    def new_order(self, i: int, now: int) -> dict[str, Any]:
        """`OrderNew` of GET /api/v3/orders/new."""
        rec = self._common(i)
        del rec["supplyId"]
        _, with_disc, price = self.prices(i)
        final = price - price * (mix(i) % 4) // 100  # WB Wallet discount of 0..3 %
        rec.update(salePrice=with_disc, requiredMeta=[], optionalMeta=None, finalPrice=final,
                   convertedFinalPrice=final, isPickupPointShipmentAllowed=mix(i) % 3 == 0)
        return rec

    def statistics_row(self, i: int, now: int) -> dict[str, Any]:
        """Row of GET /api/v1/supplier/orders: Moscow times without offset, rubles."""
        p = self.products[self.product[i]]
        fbo = self.fbo[i]
        okrug, region = _REGIONS[self.region[i]]
        total, with_disc, price = self.prices(i)
        cancel = self.cancelled_at(i, now)
        return {
            "date": msk(self.created[i]),
            "lastChangeDate": msk(cancel if cancel is not None else self.created[i]),
            "warehouseName": _FBO_WAREHOUSES[self.warehouse[i]] if fbo
            else _FBS_WAREHOUSES[self.warehouse[i]].name,
            "warehouseType": "Склад WB" if fbo else "Склад продавца",
            "countryName": "Россия", "oblastOkrugName": okrug, "regionName": region,
            "supplierArticle": p.article, "nmId": p.nm_id, "barcode": p.barcode,
            "category": p.category, "subject": p.subject, "brand": p.brand, "techSize": p.size,
            "incomeID": 29_000_000 + (self.created[i] // DAY) % 1_000_000 * 4 + self.warehouse[i],
            "isSupply": False, "isRealization": True,
            "totalPrice": total / 100, "discountPercent": p.discount, "spp": self.spp[i],
            "finishedPrice": price / 100, "priceWithDisc": with_disc / 100,
            "isCancel": cancel is not None,
            "cancelDate": msk(cancel) if cancel is not None else "0001-01-01T00:00:00",
            "sticker": str(30_000_000_000 + mix(self._salt + i) % 9_000_000_000),
            "gNumber": self.g_number(i), "srid": self.rid(i),
        }

    # --- selections ---
    def changes_since(self, since: int, now: int) -> Iterator[int]:
        """Visible orders with lastChangeDate >= since, ordered by (lastChangeDate, srid)."""
        lo, hi = bisect_left(self.created, since), self.visible_end(now)
        # A row's lastChangeDate is its creation unless a cancellation is visible; the two kinds
        # come from two time-sorted streams that are merged here.
        created = ((self.created[i], i) for i in range(lo, hi) if self.cancelled_at(i, now) is None)
        c_lo, c_hi = bisect_left(self.cancel_ts, since), bisect_right(self.cancel_ts, now)
        cancels = ((self.cancel_ts[k], self.cancel_order[k]) for k in range(c_lo, c_hi))
        for _, group in itertools.groupby(heapq.merge(created, cancels), key=lambda t: t[0]):
            yield from sorted((i for _, i in group), key=self.rid)

    def fbs_page(self, date_from: int, date_to: int, after_id: int, limit: int) -> list[int]:
        """FBS orders with date_from <= createdAt <= date_to and id > after_id, by id."""
        lo = max(bisect_left(self.created, date_from), bisect_right(self.ids, after_id))
        hi = bisect_right(self.created, date_to)
        return list(itertools.islice((i for i in range(lo, hi) if not self.fbo[i]), limit))
