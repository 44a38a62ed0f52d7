"""What goes to CRMs: `[[crm.webhooks]]` (signed events) and `[crm.retailcrm]` in loyalsync.toml."""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from crm.retailcrm.settings import RetailCrmSettings

__all__ = ["EVENT_TYPES", "CrmSettings", "WebhookEndpoint"]

# Every event type a webhook can carry (docs/webhooks/event.schema.json).
EVENT_TYPES = ("order.created", "order.changed", "member.joined", "member.tier_changed", "points.earned",
               "points.spent", "points.expired", "points.reversed", "points.adjusted", "action.sent")


class WebhookEndpoint(BaseModel):
    """One receiver: where events go, the variable holding its signing secret, which events it takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(description="where events are POSTed (https in production)")
    secret_env: str = Field(min_length=1, description="environment variable that holds the signing secret")
    secret: SecretStr = Field(default=SecretStr(""), exclude=True)
    events: tuple[str, ...] = Field(default=("*",), description="event types to send; shell patterns, e.g. points.*")
    enabled: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)
    max_per_second: float = Field(default=20.0, gt=0, le=1000, allow_inf_nan=False,
                                  description="the most events sent to this receiver a second (a new receiver "
                                              "first gets the store's history at this pace)")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")) or any(ch.isspace() for ch in url):
            raise ValueError(f"{url!r} is not an http(s) URL; give the receiver's full address, e.g. "
                             "https://crm.example/hooks/loyalsync")
        return url

    @field_validator("events")
    @classmethod
    def _known(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        unmatched = [p for p in patterns if not any(fnmatchcase(t, p) for t in EVENT_TYPES)]
        if unmatched:
            raise ValueError(f"{', '.join(unmatched)} match no event type; types: {', '.join(EVENT_TYPES)}")
        return patterns

    def wants(self, event_type: str) -> bool:
        return any(fnmatchcase(event_type, p) for p in self.events)


class CrmSettings(BaseModel):
    """What goes to CRMs: signed webhooks, one block per receiver, and a RetailCRM account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: tuple[WebhookEndpoint, ...] = ()
    retailcrm: RetailCrmSettings | None = None

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, endpoints: tuple[WebhookEndpoint, ...]) -> tuple[WebhookEndpoint, ...]:
        names = [e.name for e in endpoints]
        if len(names) != len(set(names)):
            raise ValueError("two webhooks share a name; each needs its own")
        return endpoints

    @model_validator(mode="after")
    def _sink_name_is_its_own(self) -> CrmSettings:
        if self.retailcrm is not None and self.retailcrm.name in {e.name for e in self.webhooks}:
            raise ValueError(f"retailcrm.name {self.retailcrm.name!r} is also a webhook's name; each needs its own")
        return self
