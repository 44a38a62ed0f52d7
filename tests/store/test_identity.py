"""Buyer keys: salted, stable for one installation, useless to anyone else."""

from __future__ import annotations

import re

from store import Store, connect, migrate
from store.identity import buyer_key_hasher, installation_salt


def test_the_salt_is_made_once_and_kept(store: Store):
    first = installation_salt(store.engine)
    assert len(first) == 32
    assert installation_salt(store.engine) == first
    again = Store(store.engine).buyer_key_hasher("ozon")("1020005003107121")
    assert again == store.buyer_key_hasher("ozon")("1020005003107121")


def test_keys_are_hashes_not_ids_and_differ_by_platform_and_installation(store: Store, tmp_path):
    key = store.buyer_key_hasher("ozon")("1020005003107121")
    assert re.fullmatch(r"[0-9a-f]{32}", key) and "1020005003107121" not in key
    assert store.buyer_key_hasher("yandex_market")("1020005003107121") != key
    other = connect(f"sqlite:///{tmp_path / 'other.db'}")
    migrate(other)
    assert Store(other).buyer_key_hasher("ozon")("1020005003107121") != key


def test_numbers_and_strings_of_the_same_id_give_the_same_key():
    hasher = buyer_key_hasher(b"s" * 32, "ozon")
    assert hasher(123) == hasher("123")  # Ozon sends ids as numbers or strings
