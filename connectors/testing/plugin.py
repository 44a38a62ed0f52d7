"""The conformance kit as a pytest plugin. A connector's test package enables it with one line in
its `conftest.py`:

    pytest_plugins = ["connectors.testing.plugin"]

and then certifies its connector against its emulator with a harness and the suite:

    class TestAcmeConformance(ConformanceSuite):
        harness = AcmeHarness()

The plugin gives the suite its `kit_driver` (the program that syncs, see `connectors.testing.driver`),
chosen with `--kit-driver NAME` when more than one is installed.
"""

from __future__ import annotations

import pytest

from connectors.testing.driver import DRIVER_GROUP, SyncDriver, load_driver


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kit-driver", default=None, metavar="NAME",
                     help=f"the conformance kit's sync driver: an entry point of {DRIVER_GROUP!r}")


@pytest.fixture(scope="session")
def kit_driver(request: pytest.FixtureRequest) -> SyncDriver:
    """The sync driver the conformance suite runs the connector with."""
    try:
        return load_driver(request.config.getoption("--kit-driver"))
    except LookupError as exc:
        pytest.fail(str(exc), pytrace=False)
