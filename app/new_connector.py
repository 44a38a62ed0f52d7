"""`loyalsync new-connector NAME`: a connector package that passes the conformance kit as written.

It writes the package (settings, capabilities, client, mapping, connector, an emulator of the
platform on the emulation building blocks, the response schemas it vendors), its conformance test,
a config example and the entry point that registers it. The templates in `app/scaffold/` are a
working connector for a made-up platform, "scaffoldmart"; generating renames it. Inside a loyalsync
checkout the package goes to `connectors/NAME/`; anywhere else it is a package of its own
(`loyalsync_NAME`, with its own pyproject.toml).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import keyword
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

__all__ = ["NewConnector", "ScaffoldError", "plan", "write"]

TEMPLATES = files("app") / "scaffold"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
ENTRY_GROUP = '[project.entry-points."loyalsync.connectors"]'
# The made-up platform the templates are written for; a connector may not take its name.
TEMPLATE = "scaffoldmart"


class ScaffoldError(Exception):
    """A name or a place the scaffold cannot use; the message says what to do."""


@dataclass(frozen=True)
class NewConnector:
    """Where each generated file goes, and the names in it."""

    name: str
    module: str  # connectors.NAME, or loyalsync_NAME
    root: Path  # the checkout or project the files go into
    in_checkout: bool

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def package_dir(self) -> Path:
        return self.root.joinpath(*self.module.split("."))

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests" / "connectors" / self.name if self.in_checkout else self.root / "tests"

    @property
    def example(self) -> Path:
        if self.in_checkout:
            return self.root / "config" / "marketplaces" / "examples" / f"{self.name}.toml"
        return self.root / f"{self.name}.toml.example"

    def render(self, text: str) -> str:
        """The template's words for the made-up platform, renamed."""
        # The module path first, held aside: the names below must not rename inside it.
        text = text.replace(f"connectors.{TEMPLATE}", "\0module\0").replace(f"connectors/{TEMPLATE}", "\0path\0")
        text = text.replace(TEMPLATE.upper(), self.name.upper()).replace(TEMPLATE.capitalize(), self.camel)
        text = text.replace(TEMPLATE, self.name)
        return text.replace("\0module\0", self.module).replace("\0path\0", self.module.replace(".", "/"))


def plan(name: str, root: Path, *, module: str | None = None, known: set[str] = frozenset()) -> NewConnector:
    """Check the name and the place; what `write` will create."""
    if not NAME.fullmatch(name) or keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is not a connector name: 2-31 lowercase letters, digits and _, "
                            "starting with a letter (e.g. acme, my_shop)")
    if name == TEMPLATE:
        raise ScaffoldError(f"{name!r} is the templates' own placeholder; choose another name")
    if name in known:
        raise ScaffoldError(f"a connector called {name!r} is already installed; choose another name")
    if not root.is_dir():
        raise ScaffoldError(f"{root} is not a folder; create it or pass --into an existing one")
    in_checkout = (root / "connectors" / "__init__.py").is_file() and _is_loyalsync(root / "pyproject.toml")
    new = NewConnector(name, module or (f"connectors.{name}" if in_checkout else f"loyalsync_{name}"), root,
                       in_checkout)
    taken = [p for p in (new.package_dir, new.tests_dir / "test_conformance.py", new.example) if p.exists()]
    if taken:
        raise ScaffoldError(f"{taken[0]} already exists; remove it or choose another name")
    return new


def write(new: NewConnector) -> list[Path]:
    """Write every file; returns them, in the order written."""
    written: list[Path] = []

    def put(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    for template in sorted((TEMPLATES / "package").iterdir(), key=lambda t: t.name):
        put(new.package_dir / template.name.removesuffix(".tmpl"), new.render(template.read_text(encoding="utf-8")))
    for schema in sorted((TEMPLATES / "schemas").iterdir(), key=lambda t: t.name):
        put(new.package_dir / "schemas" / schema.name, new.render(schema.read_text(encoding="utf-8")))
    put(new.tests_dir / "test_conformance.py",
        new.render((TEMPLATES / "tests" / "test_conformance.py.tmpl").read_text(encoding="utf-8")))
    example = new.render((TEMPLATES / "config_example.toml.tmpl").read_text(encoding="utf-8"))
    if not new.in_checkout:
        example = example.replace(f"#:schema ../schema/{new.name}.schema.json\n", "")
    put(new.example, example)
    entry = f'{new.name} = "{new.module}:{new.camel}Connector"'
    if new.in_checkout:
        _register(new.root / "pyproject.toml", entry)
        schema = _config_schema(new)
        if schema is not None:
            put(new.root / "config" / "schema" / f"{new.name}.schema.json", schema)
    else:
        put(new.tests_dir / "conftest.py", '"""The conformance kit, enabled in one line."""\n\n'
            'pytest_plugins = ["connectors.testing.plugin"]\n')
        put(new.root / "pyproject.toml", _project(new, entry))
    _sort_imports([p for p in written if p.suffix == ".py"])
    return written


def _sort_imports(paths: list[Path]) -> None:
    """The renamed package may sort elsewhere among the imports: let ruff reorder them, if it is here."""
    if importlib.util.find_spec("ruff") is None:
        return
    subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", "--fix", "--select", "I", "--line-length", "120",
                    *map(str, paths)], capture_output=True, check=False)


def _is_loyalsync(pyproject: Path) -> bool:
    if not pyproject.is_file():
        return False
    return re.search(r'(?m)^name = "loyalsync"$', pyproject.read_text(encoding="utf-8")) is not None


def _register(pyproject: Path, entry: str) -> None:
    """Add the entry point under loyalsync's connector group, after the ones already there."""
    text = pyproject.read_text(encoding="utf-8")
    start = text.index(ENTRY_GROUP) + len(ENTRY_GROUP)
    end = text.find("\n\n", start)
    end = len(text.rstrip("\n")) if end == -1 else end
    pyproject.write_text(text[:end] + "\n" + entry + text[end:], encoding="utf-8")


def _config_schema(new: NewConnector) -> str | None:
    """The config file's JSON schema (`loyalsync config-schema`), when the new package imports here."""
    from app.config_schema import marketplace_schema

    try:
        package = importlib.import_module(new.module)
    except ImportError:
        return None  # another checkout than the installed one: `./dev config-schema -o config/schema` there
    connector = getattr(package, f"{new.camel}Connector")
    return json.dumps(marketplace_schema(new.name, connector), ensure_ascii=False, indent=2) + "\n"


def _project(new: NewConnector, entry: str) -> str:
    return f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "loyalsync-{new.name.replace("_", "-")}"
version = "0.1.0"
description = "The {new.camel} connector for loyalsync."
requires-python = ">=3.11"
dependencies = ["loyalsync"]

[project.optional-dependencies]
dev = ["pytest>=8.3", "anyio>=4", "jsonschema>=4.23"]

{ENTRY_GROUP}
{entry}

[tool.setuptools.packages.find]
include = ["{new.module.split(".")[0]}*"]

[tool.setuptools.package-data]
"{new.module}" = ["schemas/*.json"]
'''
