"""RetailCRM's dates: `Y-m-d H:i:s` without a zone, in the account's time zone (`GET settings`), and
bonus dates that may keep only the day (../shared/crm/README.md, "RetailCRM details").

A ledger lot is available from `available_from` and expires at `expires_at` (instants). A credit
sent with day-granular dates must never make points usable earlier or keep them longer than the
lot: the activation day is the first whole day at or after `available_from`, the expiry day the
last day that ends at or before `expires_at` (a bonus is taken to last to the end of its expiry
day, the longer reading, so the rounding holds whichever one RetailCRM applies).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

__all__ = ["activation_day", "crm_time", "expiry_day"]


def crm_time(value: datetime, zone: tzinfo) -> str:
    """An instant as RetailCRM writes times: `Y-m-d H:i:s` in the account's zone, no offset."""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def activation_day(available_from: datetime, zone: tzinfo) -> date:
    """The first day whose start (in `zone`) is at or after `available_from`."""
    local = available_from.astimezone(zone)
    return local.date() if local.timetz().replace(tzinfo=None) == time(0) else local.date() + timedelta(days=1)


def expiry_day(expires_at: datetime, zone: tzinfo) -> date:
    """The last day whose end (in `zone`) is at or before `expires_at`."""
    return expires_at.astimezone(zone).date() - timedelta(days=1)
