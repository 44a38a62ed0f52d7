"""The public surface connector authors build on is pinned: changing it is a deliberate act."""

from __future__ import annotations

import connectors.auth
import connectors.base
import connectors.capabilities
import connectors.errors
import connectors.http
import connectors.ratelimit
import connectors.records
import connectors.streams
import connectors.testing

PINNED = {
    connectors.auth: {"Auth", "BodyTokenAuth", "CachedToken", "ClientCredentials", "HeaderAuth", "MemoryTokenCache",
                      "SendRaw", "TokenCache"},
    connectors.base: {"AccountSettings", "Connector", "CursorKind", "MappingContext", "OAuthAccountSettings",
                      "Page", "RateOverride",
                      "Record", "RecordType", "StreamSettings", "StreamSpec", "Window", "DemoSetup",
                      "WriteNotSupported", "WriteRequest", "WriteResult", "WriteStatus"},
    connectors.errors: {"ApiError", "AuthError", "ConfigError", "FatalApiError", "LoyalsyncError",
                        "MalformedRecord", "RateLimitedError", "RetriableApiError", "RetryDeferred",
                        "StreamUnavailable", "TOKEN_REJECTED"},
    connectors.streams: {"CursorKind", "MappingContext", "Page", "Record", "RecordType", "Stream", "StreamSpec",
                         "Window", "stream_table"},
    connectors.records: {"OrderLine", "OrderRecord", "OrderStatus", "ProductName", "ReviewRecord"},
    connectors.capabilities: {"ActionKind", "ActionRule", "BuyerIdentity", "Capabilities", "Channel",
                              "ChatRules", "LoyaltyDiscountProgram", "ReturnDuty", "ReviewProgram",
                              "SellerBonusProgram", "TextLimits"},
    connectors.ratelimit: {"Clock", "EndpointGroup", "Rate", "RateLimiter", "Sleep", "TokenBucket"},
    connectors.testing: {"ConformanceSuite", "ConnectorHarness", "ExpectedOrder", "FakeTime", "FaultRequest",
                         "HostRouter", "ResponseSchema", "SimulatedCrash", "StreamOutcome",
                         "SyncDriver"},
}


def test_public_names_are_pinned():
    for module, names in PINNED.items():
        assert set(module.__all__) == names, module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_http_layer_exports_the_client_and_its_parts():
    assert {"ApiClient", "RetryPolicy", "ResponseAction", "RedactingFilter", "redact"} <= set(connectors.http.__all__)
