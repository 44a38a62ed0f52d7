"""Small pure converters connectors share: money units, currency codes, platform time formats."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from connectors.errors import MalformedRecord

__all__ = [
    "CURRENCY_BY_NUMERIC",
    "MOSCOW",
    "currency_alpha",
    "minor_to_major",
    "number_to_decimal",
    "parse_aware",
    "parse_local",
    "plus7_phone",
    "to_local_naive",
]

# Moscow has been UTC+3 all year since 2014; a fixed offset avoids shipping tz data in the image.
MOSCOW = timezone(timedelta(hours=3), "MSK")

# ISO 4217 numeric -> alphabetic for the currencies these marketplaces trade in.
CURRENCY_BY_NUMERIC = {
    643: "RUB", 933: "BYN", 398: "KZT", 860: "UZS", 51: "AMD", 417: "KGS", 944: "AZN",
    972: "TJS", 156: "CNY", 840: "USD", 978: "EUR", 949: "TRY", 981: "GEL",
}
CENT = Decimal("0.01")


def currency_alpha(code: object, field: str) -> str:
    """ISO 4217 alphabetic code for a numeric one (int or digit string)."""
    try:
        return CURRENCY_BY_NUMERIC[int(code)]  # type: ignore[call-overload]
    except (KeyError, TypeError, ValueError):
        raise MalformedRecord(f"{field}: unknown ISO 4217 currency code {code!r}") from None


def plus7_phone(value: object) -> str | None:
    """A Russian or Kazakh (country code 7) phone in E.164, `+7XXXXXXXXXX`; None when it is none.

    One buyer must be one member whatever form a payload writes the number in: Kaspi's 10 digits
    (7066828008) or 11 (77…), Megamarket's 11 without a plus (79990001122), a leading 8 (the
    domestic trunk prefix), `+7 (999) 000-11-22` with spaces and punctuation.
    """
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    digits = re.sub(r"\D", "", str(value))
    if len(digits) == 11 and digits[0] in "78":
        digits = digits[1:]
    return f"+7{digits}" if len(digits) == 10 else None


def minor_to_major(value: object, field: str) -> Decimal:
    """Integer minor units (kopecks) to a Decimal in major units."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecord(f"{field}: expected an integer amount in minor units, got {value!r}")
    if value < 0:
        raise MalformedRecord(f"{field}: negative amount {value}")
    return (Decimal(value) / 100).quantize(CENT)


def number_to_decimal(value: object, field: str) -> Decimal:
    """A JSON number (or numeric string) in major units to an exact Decimal, to the cent."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise MalformedRecord(f"{field}: expected a number, got {value!r}")
    try:
        # str() first: Decimal(1248.32) would keep the float's binary error.
        dec = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise MalformedRecord(f"{field}: not a number: {value!r}") from None
    if not dec.is_finite() or dec < 0:
        raise MalformedRecord(f"{field}: not a valid amount: {value!r}")
    return dec.quantize(CENT)


def parse_aware(value: object, field: str) -> datetime:
    """An RFC 3339 time that must carry its offset ('Z' or ±hh:mm), as aware UTC."""
    dt = _parse(value, field)
    if dt.tzinfo is None:
        raise MalformedRecord(f"{field}: time without an offset: {value!r}")
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        raise MalformedRecord(f"{field}: not a real date-time: {value!r}") from None


def parse_local(value: object, field: str, zone: timezone) -> datetime:
    """A time the platform writes without an offset in its own zone, as aware UTC."""
    dt = _parse(value, field)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # e.g. WB's "0001-01-01T00:00:00" placeholder in Moscow time
        raise MalformedRecord(f"{field}: not a real date-time: {value!r}") from None


def to_local_naive(value: datetime, zone: timezone) -> str:
    """An aware time as the platform's offset-less local text (WB statistics' dateFrom)."""
    return value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def _parse(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise MalformedRecord(f"{field}: expected a date-time string, got {value!r}")
    text = value
    # Python < 3.11 parsers choke on nanoseconds (WB questions); keep microseconds.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[:min(digits, 6)]}{tail[digits:]}" if digits else text
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise MalformedRecord(f"{field}: not a date-time: {value!r}") from None
