"""Megamarket's pushes in the classic scheme, read into the records polling makes (megamarket.md §2.4).

The seller registers two URLs in the cabinet; Megamarket POSTs `order/new` (a new shipment) and
`order/cancel` (lots cancelled) to them and expects `{"data": {}, "meta": {}, "success": 1}`
back. loyalsync polls (it runs behind NAT), so nothing serves these yet; this module is what a push
endpoint will call, tested on the documented shape (payloads/megamarket/order_new_dbs.push.request.json).

`order/new` differs from order/get (§2.4): scheme and amounts under `handover`, `itemName` instead
of `goodsData.name`, the creation time as `shipmentDate`, `merchantId` beside the shipments. Each
pushed shipment becomes the same `OrderRecord` the poll makes (`mapping.map_shipment`, status NEW),
ranked below the poll's, so a later order/get always wins. `order/cancel`'s body is not documented:
only the shipment ids are read from it, and the next poll reads those shipments' state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.records import OrderRecord

from .mapping import map_shipment

__all__ = ["PUSH_SOURCE_RANK", "PushNotice", "parse_push", "push_reply"]

# Below order/get's 0: a push is a first sight; the poll's later answer is the truth (store.upsert).
PUSH_SOURCE_RANK = -1


@dataclass(frozen=True, slots=True)
class PushNotice:
    """What one push says: the shipments it names, the records of those it describes in full, and the
    shipments that could not be read (each with the reason, to quarantine: nothing is dropped)."""

    kind: Literal["new", "cancel"]
    shipment_ids: tuple[str, ...]
    records: tuple[OrderRecord, ...] = ()
    problems: tuple[MalformedRecord, ...] = ()


def parse_push(kind: Literal["new", "cancel"], body: Any, ctx: MappingContext) -> PushNotice:
    """Read an `order/new` or `order/cancel` body; raise `MalformedRecord` if it is not the envelope."""
    data = body.get("data") if isinstance(body, dict) else None
    shipments = data.get("shipments") if isinstance(data, dict) else None
    if not isinstance(shipments, list):
        raise MalformedRecord(f"the order/{kind} push has no data.shipments list")
    ids, records, problems = [], [], []
    for shipment in shipments:
        shipment_id = shipment.get("shipmentId") if isinstance(shipment, dict) else None
        if not isinstance(shipment_id, str | int) or isinstance(shipment_id, bool) or not str(shipment_id):
            problems.append(MalformedRecord(f"a shipment of the order/{kind} push has no shipmentId"))
            continue
        ids.append(str(shipment_id))
        if kind == "new":
            try:
                records.append(_pushed_record(shipment, ctx))
            except MalformedRecord as exc:
                problems.append(exc)
    return PushNotice(kind, tuple(ids), tuple(records), tuple(problems))


def push_reply(ok: bool) -> dict[str, Any]:
    """The answer Megamarket expects to a push: success 1, or 0 when the push could not be taken."""
    return {"data": {}, "meta": {}, "success": 1 if ok else 0}


def _pushed_record(shipment: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    """An `order/new` shipment in order/get's shape, mapped as the poll maps it."""
    handover = shipment.get("handover") if isinstance(shipment.get("handover"), dict) else {}
    items = shipment.get("items")
    as_get = {
        "shipmentId": str(shipment["shipmentId"]),
        "status": "NEW",  # a new shipment (§2.4)
        "creationDate": shipment.get("shipmentDate"),
        "serviceScheme": handover.get("serviceScheme"),
        "customer": shipment.get("customer"),
        "items": [{**item, "status": "NEW", "events": [], "goodsData": {"name": item.get("itemName")}}
                  if isinstance(item, dict) else item for item in items] if isinstance(items, list) else items,
    }
    return replace(map_shipment(as_get, ctx), source="push", source_rank=PUSH_SOURCE_RANK)
