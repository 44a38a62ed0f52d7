"""Conformance kit: one suite every connector + emulator pair must pass (third parties too)."""

from connectors.testing.driver import SimulatedCrash, StreamOutcome, SyncDriver
from connectors.testing.harness import ConnectorHarness, ExpectedOrder, FakeTime, FaultRequest, ResponseSchema
from connectors.testing.routing import HostRouter
from connectors.testing.suite import ConformanceSuite

__all__ = [
    "ConformanceSuite",
    "ConnectorHarness",
    "ExpectedOrder",
    "FakeTime",
    "FaultRequest",
    "HostRouter",
    "ResponseSchema",
    "SimulatedCrash",
    "StreamOutcome",
    "SyncDriver",
]
