"""Product names from the platforms' catalogs, for the reviews nothing synced names.

Runs after reviews are synced and before replies are proposed (the daemon's actions job, the
demo, `run_actions`): the SKUs of unanswered reviews that carry no name and have none cached
(`store.products.unnamed_review_skus`) are asked of each account's connector
(`Connector.product_names`: Ozon's product info, Yandex Market's offer mappings; Wildberries'
reviews name their product themselves), and what comes back is cached.

What was sought decides when a reply may name the article instead (`loyalty.replies`): a SKU the
platform answered for (with or without a name), or whose lookup it refused for good (a token without
the catalog's scope), may; one synced after this lookup began, or whose lookup failed for a while (a
timeout, a 5xx, a rate limit), waits for the next run's lookup, so a reply's wording never depends on
which job ran first. One line is logged per failure. Accounts are asked at once, each within `TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from connectors.base import Connector
from connectors.errors import FatalApiError, LoyalsyncError
from store import Store
from store.products import save_catalog_names, unnamed_review_skus

__all__ = ["TIMEOUT", "NameFill", "fill_product_names"]

log = logging.getLogger("loyalsync.product_names")
# Longer than a few paced batches with retries, short enough that replies are never held long.
TIMEOUT = 60.0


@dataclass(slots=True)
class NameFill:
    """What one fill did: SKUs asked for and names cached, per (marketplace, account); failed accounts."""

    asked: dict[tuple[str, str], int] = field(default_factory=dict)
    named: dict[tuple[str, str], int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # (marketplace, account, sku) settled by this lookup: named, unknown to the platform, or refused
    # for good; an unnamed review's reply may name the article only for these.
    sought: set[tuple[str, str, str]] = field(default_factory=set)


async def fill_product_names(store: Store, connectors: Mapping[tuple[str, str], Connector], *, now: datetime,
                             timeout: float = TIMEOUT) -> NameFill:
    """Ask each account's catalog for the names its unanswered reviews lack, and cache them."""
    wanted = await asyncio.to_thread(unnamed_review_skus, store.engine)
    result = NameFill()
    jobs = [(key, connectors[key], skus) for key, skus in wanted.items() if key in connectors]
    await asyncio.gather(*(_fill_account(store, key, connector, skus, now, timeout, result)
                           for key, connector, skus in jobs))
    return result


async def _fill_account(store: Store, key: tuple[str, str], connector: Connector, skus: list[str], now: datetime,
                        timeout: float, result: NameFill) -> None:
    marketplace, account = key
    result.asked[key] = len(skus)
    try:
        async with asyncio.timeout(timeout):
            names = await connector.product_names(skus)
    except FatalApiError as exc:  # refused for good (no scope, no such method): replies name the article
        result.failed.append(key)
        result.sought.update((marketplace, account, sku) for sku in skus)
        log.warning("product names %s/%s: the platform refused the lookup (%s); replies name the article",
                    marketplace, account, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return
    except (LoyalsyncError, httpx.HTTPError, OSError, TimeoutError) as exc:
        result.failed.append(key)
        # The error's own words name the endpoint and status, never a token or a body.
        log.warning("product names %s/%s: %d SKU(s) not looked up (%s: %s); their replies wait for a later "
                    "lookup (past the reply target they name the article)", marketplace, account, len(skus),
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "no detail")
        return
    except Exception:  # noqa: BLE001 - a connector's bug must not hold replies back either
        result.failed.append(key)
        result.sought.update((marketplace, account, sku) for sku in skus)
        log.exception("product names %s/%s: the lookup failed; replies name the article", marketplace, account)
        return
    result.sought.update((marketplace, account, sku) for sku in skus)
    asked = set(skus)
    names = {sku: name for sku, name in names.items() if sku in asked}  # only what was asked for
    result.named[key] = await asyncio.to_thread(save_catalog_names, store.engine, marketplace, account, names, now)
