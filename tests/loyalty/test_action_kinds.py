"""One action-kind vocabulary: `connectors.capabilities.ActionKind`, used by connectors' writes and the outbox."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.base import WriteRequest
from connectors.capabilities import ActionKind
from connectors.registry import available_connectors
from loyalty.action_settings import ActionSettings
from loyalty.actions import OUTBOX_KINDS, Kind


def test_the_outbox_speaks_the_connectors_vocabulary() -> None:
    assert Kind is ActionKind
    assert set(OUTBOX_KINDS) <= set(ActionKind) and ActionKind.OPS_TASK in OUTBOX_KINDS
    # Every write a connector declares is one the outbox can hold.
    for cls in available_connectors().values():
        assert cls.capabilities.writes - {ActionKind.START_CHAT} <= set(OUTBOX_KINDS), cls.name


def test_a_write_request_carries_an_action_kind_even_from_stored_text() -> None:
    assert WriteRequest(kind="reply_to_review", key="k", target="t").kind is ActionKind.REPLY_TO_REVIEW  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WriteRequest(kind="reply", key="k", target="t")  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["replies", "loyalty_discount"])
def test_approval_keys_are_the_outbox_kinds_only(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        ActionSettings.model_validate({"approval": {key: "auto"}})
    (error,) = info.value.errors()
    assert error["loc"] == ("approval", key, "[key]")
    assert "must be 'reply_to_review', 'create_promo_code', 'send_chat_message' or 'ops_task'" in error["msg"]
    assert ActionSettings.model_validate({"approval": {"send_chat_message": "auto"}}).approval_for(
        ActionKind.SEND_CHAT_MESSAGE) == "auto"
