"""Duration text as ops write it ("90s", "5m", "1h30m", "14d", ISO 8601 "PT5M") to `timedelta`."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION_EXAMPLES", "MAX_DURATION", "format_duration", "parse_duration"]

DURATION_EXAMPLES = '"90s", "5m", "2h", "14d", "1h30m", ISO 8601 "PT5M" or whole seconds'
# Longer than any schedule, window or retention makes sense for; far below what `timedelta` and
# date arithmetic overflow at ("99999999999d" used to crash the loader).
MAX_DURATION = timedelta(days=36_500)

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Units must come largest first and at most once each, so "5m3h" or "1h1h" are typos, not sums.
_COMPACT = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
# Years and months are left out on purpose: they have no fixed length.
_ISO = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def parse_duration(value: object) -> timedelta:
    """A non-negative `timedelta` from duration text, whole seconds or a `timedelta`.

    Raises ValueError with a message fit to show ops.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-") and _is_duration(text[1:].strip()):
            raise ValueError(f"{text!r} is not a duration: it must not be negative")
        seconds = _parse_text(text)
    else:
        got = f" (got {value!r})" if isinstance(value, float | bool) else ""
        raise ValueError(f"must be a duration such as {DURATION_EXAMPLES}{got}")
    if seconds < 0:
        raise ValueError("must not be negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"must not be longer than {MAX_DURATION.days}d (100 years)")
    return timedelta(seconds=seconds)


def _is_duration(text: str) -> bool:
    try:
        _parse_text(text)
    except ValueError:
        return False
    return True


def _parse_text(text: str) -> float:
    if text.isdigit():
        return int(text)
    compact = _COMPACT.fullmatch(text.lower())
    if text and compact:
        counts = zip(compact.groups(), _UNITS.values(), strict=True)
        return sum(int(n) * unit for n, unit in counts if n)
    iso = _ISO.fullmatch(text.upper())
    if text.upper() not in ("P", "PT") and iso:
        weeks, days, hours, minutes, secs = (float(n) if n else 0.0 for n in iso.groups())
        return weeks * 604_800 + days * 86_400 + hours * 3_600 + minutes * 60 + secs
    raise ValueError(f"{text!r} is not a duration; use e.g. {DURATION_EXAMPLES}")


def format_duration(value: timedelta) -> str:
    """The compact text form of `value`, e.g. `1h30m`; the inverse of `parse_duration`."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in list(_UNITS.items())[1:]:  # days, not weeks: "14d" reads better than "2w"
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
