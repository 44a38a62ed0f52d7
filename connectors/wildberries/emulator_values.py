"""Values the Wildberries emulator's orders and reviews share: ids, WB's time formats, products.

Split from `emulator_data` so that the order table (`emulator_orders`) and the reviews there can
both use them.
"""

from __future__ import annotations

import random
import time
from collections import namedtuple

__all__ = ["DAY", "MAX_CONFIRM", "MSK_OFFSET", "Product", "Warehouse", "ean13", "iso_utc", "mix", "msk",
           "msk_offset", "products"]

_M64 = (1 << 64) - 1
MSK_OFFSET = 3 * 3600  # Moscow has been UTC+3 all year round since 2014
DAY = 86400
# Seller confirmation comes within a day (see emulator_orders._timings); /orders/new only scans that far back.
MAX_CONFIRM = DAY


def mix(x: int) -> int:
    """splitmix64 finalizer: a bijection on 64-bit ints, so distinct inputs give distinct ids."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def iso_utc(ts: int) -> str:
    """Marketplace style: RFC3339 UTC with a Z."""
    t = time.gmtime(ts)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}Z"


def msk(ts: int) -> str:
    """Statistics style: Moscow wall time without an offset."""
    t = time.gmtime(ts + MSK_OFFSET)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}"


def msk_offset(ts: int) -> str:
    """Feedbacks style: Moscow time with an explicit +03:00."""
    return msk(ts) + "+03:00"


def ean13(body12: str) -> str:
    odd = sum(int(c) for c in body12[0::2])
    even = sum(int(c) for c in body12[1::2])
    return body12 + str((10 - (odd + 3 * even) % 10) % 10)


# One product card (one size of it): what orders and reviews share. Prices in kopecks.
Product = namedtuple("Product", "nm_id imt_id chrt_id article barcode category subject subject_id "
                                "brand name color size list_kop discount")
Warehouse = namedtuple("Warehouse", "id name office_id office")


# (article stem, category, subject, subjectId, brand, product name, colours, sizes, list price ₽)
_CATALOG = (
    ("mug-ceramic-350", "Дом", "Кружки", 3979, "HomeClay", "Кружка керамическая 350 мл",
     ("белый", "чёрный"), ("0",), 2580),
    ("plate-26", "Дом", "Тарелки", 3980, "HomeClay", "Тарелка обеденная 26 см",
     ("белый", "серый"), ("0",), 1290),
    ("polo-men", "Одежда", "Футболки-поло", 219, "Бест Трикотаж", "Футболка-поло мужская",
     ("чёрный", "синий"), ("46", "48", "50", "52"), 3490),
    ("hoodie-oversize", "Одежда", "Худи", 1724, "Бест Трикотаж", "Худи оверсайз",
     ("серый", "бежевый"), ("S", "M", "L"), 5990),
    ("multistyler-5in1", "Бытовая техника", "Мультистайлеры", 2970, "Тест", "Мультистайлер 5 в 1",
     ("розовый",), ("0",), 8870),
    ("yoga-mat-6", "Спорт", "Коврики для йоги", 4412, "FlexOn", "Коврик для йоги 6 мм",
     ("фиолетовый", "зелёный"), ("0",), 1990),
    ("hand-cream-75", "Красота", "Кремы", 1556, "Naturelle", "Крем для рук 75 мл",
     ("",), ("0",), 450),
    ("bricks-city-420", "Детям", "Конструкторы", 4921, "BrickKid", "Конструктор 420 деталей",
     ("",), ("0",), 3290),
)
def products(rng: random.Random, count: int) -> list[Product]:
    out = []
    for k in range(count):
        stem, cat, subj, subj_id, brand, name, colors, sizes, rub = _CATALOG[k % len(_CATALOG)]
        color, size = colors[k % len(colors)], sizes[k % len(sizes)]
        slug = f"{stem}-{k:02d}" + (f"-{size}" if size != "0" else "")
        out.append(Product(
            nm_id=245_000_000 + k * 7919 + rng.randrange(7000), imt_id=218_000_000 + k * 3571,
            chrt_id=381_000_000 + k * 104_729 + rng.randrange(100_000), article=slug,
            barcode=ean13(f"20{rng.randrange(10**10):010d}"), category=cat, subject=subj,
            subject_id=subj_id, brand=brand, name=name, color=color, size=size,
            list_kop=int(rub * rng.uniform(0.9, 1.2)) * 100, discount=rng.choice((10, 25, 45, 55)),
        ))
    return out
