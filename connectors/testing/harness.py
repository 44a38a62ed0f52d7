"""What a connector author provides to the conformance kit: its emulator, an account, and the truth."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from connectors.base import AccountSettings, Connector, WriteRequest
from connectors.capabilities import ActionKind

__all__ = ["WRITE_TEXT", "ConnectorHarness", "ExpectedOrder", "FakeTime", "FaultRequest", "ResponseSchema"]

#: A text every platform accepts in a reply or a chat: polite, no link, no promise, no buyer data.
WRITE_TEXT = "Спасибо за заказ! Если появятся вопросы по товару, пишите сюда."


@dataclass(frozen=True, slots=True)
class FaultRequest:
    """A platform misbehaviour the kit asks the emulator to stage on one stream's endpoints.

    - `short_page`: pages shorter than the limit that are not the last, on every paging endpoint
      the stream reads (`times`: None = any number, each page with `probability`); endpoints the
      connector declares in `Connector.short_page_is_last` are spared.
    - `late_change`: `times` of the stream's old orders change `change_after` past the emulator's
      generated "now", each created `age` before its change (`connectors.emulation` `late_change`).
    - `truncated`: an answer cut off mid-body (a dropped connection); `expired_token`: after `after`
      requests on the stream's endpoint the token expires, and every later request is refused.
    - `rate_limit`: `times` refusals for too many requests, each asking for `retry_after` seconds
      (None: the refusal says nothing of when to come back).
    - `schema_drift`: every answer of the stream's endpoints gains fields the platform has not
      documented (in every object, nested ones too, of any JSON type) and leaves out the fields it
      documents as optional, as a platform's API does when it evolves.
    """

    stream: str
    kind: Literal["rate_limit", "server_error", "malformed", "short_page", "late_change", "truncated",
                  "expired_token", "schema_drift"]
    times: int | None = 1
    retry_after: int | None = 2
    probability: float | None = None
    age: timedelta = timedelta(days=45)
    change_after: timedelta = timedelta(hours=1)
    after: int = 0  # expired_token: the requests the token still serves before it expires for good


@dataclass(frozen=True, slots=True)
class ResponseSchema:
    """The platform's JSON schema of the answers to `method` on paths matching `path` (a regular
    expression, matched whole): of its successes (`ok`) or of its errors; of the answers with
    `status` only, where the platform documents one schema per status.

    `allow`: regular expressions of error lines ("json.path: message") the platform itself shows
    beside its schema, kept on purpose; name the evidence (an official example) where they are set.
    """

    method: str
    path: str
    ok: bool
    schema: Mapping[str, Any]
    status: int | None = None
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpectedOrder:
    """An order's instant and money as the platform's own data says, converted by the harness."""

    created_at: datetime
    total: Decimal
    currency: str
    # The value of the goods returned so far, where the platform reports it (None: not checked).
    returned_total: Decimal | None = None


class FakeTime:
    """A monotonic clock that only moves when someone sleeps: pacing and 429 waits cost no time."""

    def __init__(self, start: float = 1_000.0):
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # let other coroutines run, as a real sleep would

    @property
    def waited(self) -> float:
        """Seconds slept in total."""
        return sum(self.slept)


class ConnectorHarness(ABC):
    """Binds one connector to its emulator for the conformance suite."""

    connector_cls: ClassVar[type[Connector]]
    #: The account's secret (a pasted token, or an OAuth client secret), which must never leak.
    token: ClassVar[str] = "conformance-sentinel-token-7f3a"
    #: Whether the connector fetches its token at run time and refreshes it (OAuth client
    #: credentials): a token expiring mid-sync is then refreshed once and the sync goes on.
    refreshes_token: ClassVar[bool] = False
    #: Streams that read another stream's endpoint (stream -> that stream): the kit stages a fault
    #: on each endpoint once, through the stream named here.
    shares_endpoint: ClassVar[Mapping[str, str]] = {}

    def with_secret(self, account: AccountSettings, secret: str) -> AccountSettings:
        """`account` with its secret replaced (the kit's wrong credentials): the token by default;
        an OAuth harness replaces the client secret."""
        from pydantic import SecretStr

        return account.model_copy(update={"token": SecretStr(secret)})

    @abstractmethod
    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        """A fresh emulator: the same seeded data set (history up to `generated_at`) seen at
        `serving_at`, so a later `serving_at` shows the same orders with newer statuses."""

    @abstractmethod
    def account(self, *, base_url: str = "http://emulator") -> AccountSettings:
        """Settings of an account whose hosts all point at `base_url`, with `token` set."""

    @abstractmethod
    def expected_order_ids(self, app: Any, now: datetime) -> set[str]:
        """Every order id the store should hold after a full sync at `now`."""

    @abstractmethod
    def expected_review_ids(self, app: Any, now: datetime) -> set[str]:
        """Every review id the store should hold after a full sync at `now`."""

    @abstractmethod
    def expected_order(self, app: Any, order_id: str) -> ExpectedOrder:
        """The platform's own figures for one order, converted independently of `mapping.py`."""

    @abstractmethod
    def corrupted_ids(self, app: Any) -> set[str]:
        """Ids of the records the emulator corrupted for a `malformed` fault."""

    @abstractmethod
    def rate_limited_count(self, app: Any) -> int:
        """How many 429 (or the platform's equivalent) answers the emulator has sent."""

    @abstractmethod
    def short_pages_served(self, app: Any) -> int:
        """How many pages the emulator cut short for a `short_page` fault (its FaultPlan's list)."""

    @abstractmethod
    def late_changes(self, app: Any) -> Mapping[str, tuple[str, str]]:
        """order_id -> (status before, status after) of every order a `late_change` fault changed,
        in the export's words (`created`, `in_delivery`, `delivered`, `cancelled`, `returned`, …),
        converted from the emulator's own data independently of `mapping.py`."""

    def write_requests(self, orders: Sequence[Mapping[str, Any]], reviews: Sequence[Mapping[str, Any]],
                       now: datetime) -> dict[ActionKind, list[WriteRequest]]:
        """Candidate writes per action kind, aimed at what a sync stored (export records): the kit
        performs the first the platform accepts, for each kind the connector declares. Override
        when the platform needs other targets or parameters."""
        unanswered = [str(r["review_id"]) for r in reviews if not r["answered"]][:3]
        newest = sorted(orders, key=lambda o: o["created_at"], reverse=True)
        open_orders = [str(o["order_id"]) for o in newest if o["status"] not in ("cancelled", "returned")][:40]
        promo = {"discount_value": 300, "valid_until": (now + timedelta(days=30)).isoformat(),
                 "customer_id": "12345678", "points": "300", "buyer_key": "member-1"}
        return {
            ActionKind.REPLY_TO_REVIEW: [WriteRequest(ActionKind.REPLY_TO_REVIEW, f"reply:{r}", r, WRITE_TEXT)
                                         for r in unanswered],
            ActionKind.SEND_CHAT_MESSAGE: [WriteRequest(ActionKind.SEND_CHAT_MESSAGE, f"chat:{o}", o, WRITE_TEXT)
                                           for o in open_orders],
            ActionKind.CREATE_PROMO_CODE: [WriteRequest(ActionKind.CREATE_PROMO_CODE, "promo:kit:1", "member-1",
                                                        params=promo)],
        }

    def response_schemas(self) -> Sequence[ResponseSchema] | None:
        """The response schemas the connector vendors from the platform's documents; the kit checks
        every answer its emulator gives against them (None: this harness vendors none yet)."""
        return None
