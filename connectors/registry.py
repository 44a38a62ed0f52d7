"""Connector discovery through the `loyalsync.connectors` entry-point group.

Built-in connectors register there too, so third-party ones are found the same way.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from connectors.base import Connector
from connectors.capabilities import Capabilities
from connectors.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "available_capabilities", "available_connectors", "get_connector"]

ENTRY_POINT_GROUP = "loyalsync.connectors"


@cache
def available_connectors() -> dict[str, type[Connector]]:
    """Every installed connector class, by its platform name."""
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"entry point {ep.name!r} does not name a Connector subclass")
        found[cls.name] = cls
    return found


def available_capabilities() -> dict[str, Capabilities]:
    """What each installed connector's platform allows, by its platform name."""
    return {name: cls.capabilities for name, cls in available_connectors().items()}


def get_connector(name: str) -> type[Connector]:
    """The connector class for `name`, or a ConfigError listing the known ones."""
    known = available_connectors()
    try:
        return known[name]
    except KeyError:
        names = ", ".join(sorted(known)) or "none installed"
        raise ConfigError([f"unknown marketplace {name!r}; known: {names}"]) from None
