"""Property: through the whole pipeline (gate -> outbox -> connector -> emulator), nothing the gate
should refuse reaches an emulator, and nothing it should allow is refused.

Reply texts are built from labelled fragments (links, phones, e-mails, personal data, promo codes)
and clean sentences, on every platform; the oracle is how the text was built.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.wiring import App
from loyalty.action_settings import ActionSettings
from loyalty.actions import Action, Kind
from loyalty.outbox import action_rows, execute, propose
from tests.conftest import live_on_emulator

CLEAN = ["Спасибо за отзыв! Рады, что покупка понравилась", "Цена 1 500 ₽ за комплект",
         "Доставка 12.03.2026 с 10:00 до 18:00", "Размер XL-200 в наличии", "Бренд NIKE, хит продаж",
         "Нам жаль, что товар вас огорчил: напишите в чат заказа на площадке"]
BAD = {"link": ["Подробнее на uyut-shop.ru", "Канал t.me/uyut_shop", "Каталог www.uyut.ru/new"],
       "phone": ["Звоните +7 (912) 345-67-67", "тел. 8 912 345 67 89"],
       "email": ["Пишите на help@uyut.ru", "почта ivan at mail dot ru"],
       "personal": ["карта 4111 1111 1111 1111", "пишите @uyut_support", "напишите в телеграм"],
       "promo": ["Дарим промокод SALE2026", "код ВЕСНА25 на всё"]}
REVIEW_ID = {"wildberries": "id", "ozon": "review_id", "yandex_market": "feedbackId"}
TEXT_FIELD = {"wildberries": ("text",), "ozon": ("text",), "yandex_market": ("comment", "text")}

text_st = st.lists(st.one_of(st.sampled_from(CLEAN).map(lambda t: (None, t)),
                             st.sampled_from([(label, t) for label, ts in BAD.items() for t in ts])),
                   min_size=1, max_size=3)


def _synced(name: str, tmp) -> tuple:
    return live_on_emulator(name, tmp, orders=5, reviews=16)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["wildberries", "ozon", "yandex_market"]), texts=st.lists(text_st, min_size=1,
                                                                                        max_size=6))
def test_only_what_the_gate_allows_reaches_the_platform(tmp_path_factory, name, texts):
    setup, store, config = _synced(name, tmp_path_factory.mktemp("gate"))
    now = datetime.now(UTC)
    expected: dict[str, bool] = {}

    async def scenario() -> None:
        async with App(config, store=store, transports={name: httpx.ASGITransport(setup.app)}) as app:
            await app.sync_once([j for j in app.jobs() if j.stream == "reviews"])
            open_reviews = [r["review_id"] for r in store.iter_reviews() if not r["answered"]]
            actions = []
            for rid, parts in zip(open_reviews, texts, strict=False):
                text = ". ".join(t for _, t in parts)
                expected[str(rid)] = all(label is None for label, _ in parts)
                actions.append(Action(kind=Kind.REPLY_TO_REVIEW, marketplace=name, account=config.accounts[0].settings
                                      .name, key=f"reply:{name}:{rid}", target=str(rid), created_at=now, text=text,
                                      public=True))
            propose(store, actions, app.capabilities(), ActionSettings(), mode="live", now=now)
            await execute(store, app.write_connectors(), settings=ActionSettings(),
                          mode="live", now=now, secrets=setup.secrets)

    asyncio.run(scenario())
    decided = {r["target"]: r["status"] for r in action_rows(store)}
    assert {t for t, ok in expected.items() if ok} == {t for t, s in decided.items() if s == "sent"}
    assert {t for t, ok in expected.items() if not ok} == {t for t, s in decided.items() if s == "refused"}
    reached = {str(w["body"][REVIEW_ID[name]]) for w in setup.app.state.writes if isinstance(w["body"], dict)}
    assert reached == {t for t, ok in expected.items() if ok}
    for w in setup.app.state.writes:
        text = w["body"]
        for key in TEXT_FIELD[name]:
            text = text[key]
        assert not any(t in text for ts in BAD.values() for t in ts)
    store.engine.dispose()
