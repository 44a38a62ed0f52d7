"""`ProductName.of`: whatever a platform's catalog sends, only a clean one-line name is kept."""

from __future__ import annotations

import pytest

from connectors.records import ProductName


@pytest.mark.parametrize("raw", [None, "", "   ", "\n\t", 42, 4.2, True, ["Кружка"], {"ru": "Кружка"}])
def test_a_missing_blank_or_non_text_name_is_no_name(raw):
    assert ProductName.of(raw) is None
    assert ProductName.of(raw, "Бренд") is None  # a brand alone names nothing


def test_a_name_is_trimmed_to_one_line_and_capped():
    assert ProductName.of("  Кружка\nкерамическая\t\t350 мл\x00 ") == ProductName("Кружка керамическая 350 мл")
    long = ProductName.of("Чайник " * 100)
    assert long is not None and long.name == ("Чайник " * 100)[:ProductName.NAME_MAX]
    assert ProductName.of("x" * 254 + " y") == ProductName("x" * 254)  # no space left dangling at the cut


def test_a_brand_is_kept_only_when_it_is_text():
    assert ProductName.of("Лампа", " Люмен ") == ProductName("Лампа", "Люмен")
    assert ProductName.of("Лампа", "  ") == ProductName("Лампа", None)
    assert ProductName.of("Лампа", 7) == ProductName("Лампа", None)
    assert len(ProductName.of("Лампа", "Б" * 500).brand or "") == ProductName.BRAND_MAX  # type: ignore[union-attr]
