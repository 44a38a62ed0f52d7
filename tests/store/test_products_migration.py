"""Migration 0012: `products`, backfilled from the names a store at 0011 already holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text

from tests.store.conftest import migrate_to

T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC).replace(tzinfo=None)  # naive UTC, as the store keeps it
HOUR = timedelta(hours=1)


def _order(conn, order_id: str, created: datetime, *lines: tuple[str, str | None], mp: str = "ozon",
           updated: datetime | None = None) -> None:
    conn.execute(text(
        "INSERT INTO orders (marketplace, account, order_id, created_at, updated_at, status, platform_status, "
        "fulfilment, currency, total, source, source_rank, returned_total, status_changed_at) VALUES "
        "(:mp, 'main', :id, :t, :u, 'delivered', 'delivered', 'fbs', 'RUB', 100, '', 0, 0, :u)"),
        {"mp": mp, "id": order_id, "t": created, "u": updated or created})
    for k, (sku, name) in enumerate(lines):
        conn.execute(text(
            "INSERT INTO order_lines (marketplace, account, order_id, line_no, sku, offer_id, name, quantity, price, "
            "source_rank) VALUES (:mp, 'main', :id, :k, :sku, :sku, :name, 1, 100, 0)"),
            {"mp": mp, "id": order_id, "k": k, "sku": sku, "name": name})


def _review(conn, review_id: str, sku: str, created: datetime, name: str | None, brand: str | None = None) -> None:
    conn.execute(text(
        "INSERT INTO reviews (marketplace, account, review_id, sku, rating, text, pros, cons, created_at, answered, "
        "product_name, brand) VALUES ('wildberries', 'main', :id, :sku, 5, '', '', '', :t, false, :name, :brand)"),
        {"id": review_id, "sku": sku, "t": created, "name": name, "brand": brand})


def test_migration_0012_caches_the_newest_stored_name_of_each_sku(bare_engine):
    migrate_to(bare_engine, "0011")
    with bare_engine.begin() as conn:
        _order(conn, "old", T0, ("101", "Кружка"), ("102", "Тарелка"), updated=T0 + 5 * HOUR)  # changed late
        _order(conn, "new", T0 + HOUR, ("101", " Кружка\n350 мл "), ("103", None), ("104", "  "))
        _order(conn, "m-1", T0, ("SKU-A", "Лампа"), mp="yandex_market")
        _review(conn, "w-1", "777", T0, "Худи", "Бренд")
        _review(conn, "w-2", "777", T0 + HOUR, "Худи оверсайз", None)
        _review(conn, "w-3", "778", T0, None, "Бренд")
    migrate_to(bare_engine, "0012")
    with bare_engine.connect() as conn:
        rows = conn.execute(text("SELECT marketplace, sku, name, brand, source, updated_at FROM products "
                                 "ORDER BY marketplace, sku")).all()
    assert [(mp, sku, name, brand, source, str(at)[:19]) for mp, sku, name, brand, source, at in rows] == [
        ("ozon", "101", "Кружка 350 мл", None, "order", "2026-09-01 13:00:00"),
        ("ozon", "102", "Тарелка", None, "order", "2026-09-01 12:00:00"),
        ("wildberries", "777", "Худи оверсайз", None, "review", "2026-09-01 13:00:00"),
        ("yandex_market", "SKU-A", "Лампа", None, "order", "2026-09-01 12:00:00"),
    ]
    migrate_to(bare_engine, "0011", down=True)
    assert "products" not in inspect(bare_engine).get_table_names()


def test_migration_0012_on_an_empty_store_makes_an_empty_cache(bare_engine):
    migrate_to(bare_engine, "0012")
    with bare_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM products")).scalar() == 0
    columns = {c["name"]: c for c in inspect(bare_engine).get_columns("products")}
    assert set(columns) == {"marketplace", "account", "sku", "name", "brand", "source", "updated_at"}
    assert inspect(bare_engine).get_pk_constraint("products")["constrained_columns"] == ["marketplace", "account",
                                                                                         "sku"]


def test_0012_follows_0011_and_is_named_like_the_others():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from store.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg).get_revision("0012")
    assert (script.down_revision, script.module.__file__.rsplit("/", 1)[-1]) == ("0011", "0012_products.py")
