"""Only `connectors/` knows the platforms: no code outside it names one (issue 19, the declared contract).

What a platform is (display name, colour, rate-limit statuses, programs) is declared on its connector
and read from there; a package above `connectors/` that spells a platform's name in code would
branch on it or keep a second copy of what the connector declares. Docstrings and comments may
name platforms (they explain why); string constants and identifiers may not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.registry import available_connectors

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("store", "sync", "loyalty", "app")


def _platform_words() -> re.Pattern[str]:
    words: set[str] = set()
    for name, cls in available_connectors().items():
        words |= {name, cls.display_name}
    # `yandex_market` and "Yandex Market" are one platform however it is spelt.
    spelt = sorted({re.sub(r"[\s_-]+", r"[\\s_-]*", re.escape(w.lower()).replace(r"\ ", " ")) for w in words})
    return re.compile(r"(?<![a-z0-9])(" + "|".join(spelt) + r")(?![a-z0-9])", re.IGNORECASE)


PLATFORM = _platform_words()


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def platform_names_in(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant (docstrings aside) and identifier that names a platform."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        texts: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            texts.append(node.value)
        elif isinstance(node, ast.Name):
            texts.append(node.id)
        elif isinstance(node, ast.Attribute):
            texts.append(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            texts.append(node.name)
        elif isinstance(node, ast.arg):
            texts.append(node.arg)
        elif isinstance(node, ast.alias):
            texts.extend(n for n in (node.name, node.asname) if n)
        elif isinstance(node, ast.ImportFrom) and node.module:
            texts.append(node.module)
        texts = [t.replace(".", " ") for t in texts]
        yield from ((getattr(node, "lineno", 0), t) for t in texts if PLATFORM.search(t))


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_outside_connectors_names_a_platform(path: Path) -> None:
    found = list(platform_names_in(path.read_text(encoding="utf-8")))
    assert not found, "\n".join(f"{path.relative_to(ROOT)}:{line}: {text!r}" for line, text in found)


def test_the_check_sees_strings_names_and_imports_but_not_docstrings_or_comments() -> None:
    source = '''
"""Wildberries and Ozon may be named here."""
import connectors.ozon.capabilities as caps  # and Yandex Market here
from connectors.wildberries import mapping


def plan(yandex_market_rules):
    """On Ozon ..."""
    colour = {"wildberries": "#9b2ccf"}
    label = f"set {caps} on Yandex Market"
    wb_ozon_total = 1
    return "ordinary words: dozen, ozonator, wildberry"
'''
    found = {text for _, text in platform_names_in(source)}
    assert found == {"connectors ozon capabilities", "connectors wildberries", "yandex_market_rules",
                     "wildberries", " on Yandex Market", "wb_ozon_total"}
