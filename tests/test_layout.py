"""The package's layout: its folders are the stages, and imports only go down.

    core < control < ingest < contribute < release < views < synthetic < tools < the CLI

A module may import from its own folder and the folders below it, never above, also
inside functions: changing how a page scores trending must never silently change what a
publish releases. docs/layout.md says what lives where.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "analytics"

# Bottom first. A stage may import the stages at its own level or below.
STAGES = {"core": 0, "control": 1, "ingest": 2, "contribute": 3, "release": 4, "views": 5, "synthetic": 6,
          "tools": 7, "__main__": 8, "cli": 8}
TOP_LEVEL_FILES = {"__init__.py", "__main__.py", "cli.py"}


def stage_of(module: str) -> str:
    """'analytics.release.publish' -> 'release'; 'analytics.cli' -> 'cli'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every analytics module `source` imports, at any depth (functions included), with its line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("analytics")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("analytics"):
                # `from analytics.release import publish` imports the module analytics.release.publish
                found += [(node.lineno, f"{target}.{alias.name}" if target.count(".") == 1 else target)
                          for alias in node.names]
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of `module` that go up the stages."""
    here = STAGES[stage_of(module)]
    bad = []
    for line, target in imported_modules(source, module, is_package):
        there = stage_of(target)
        if there not in STAGES:
            bad.append(f"{module}:{line} imports {target}, which is in no stage")
        elif STAGES[there] > here:
            bad.append(f"{module}:{line} imports {target} ({there} is above {stage_of(module)})")
    return bad


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_sits_in_a_stage_folder():
    stray = [p.relative_to(ROOT).as_posix() for p in modules()
             if p.parent == PACKAGE and p.name not in TOP_LEVEL_FILES
             or p.parent != PACKAGE and p.relative_to(PACKAGE).parts[0] not in STAGES]
    assert stray == []


def test_imports_only_go_down_the_stages():
    found = []
    for path in modules():
        if path.parent == PACKAGE:
            continue  # the package's __init__ and the CLI sit on top
        found += violations(path.read_text(), module_name(path), path.name == "__init__.py")
    assert found == []


@pytest.mark.parametrize("module, source", [
    # The backward imports this layout removed, each as it was written.
    ("analytics.release.publish", "def f():\n    from analytics.views import trends\n"),
    ("analytics.release.publish", "def f():\n    from analytics.views import benchmark\n"),
    ("analytics.contribute.anonymize", "def f():\n    from analytics.views import benchmark\n"),
    ("analytics.control.store", "from analytics.views.recommend import CATALOG\n"),
    ("analytics.control.store", "from analytics.release import dp_budget as _dp_budget\n"),
    ("analytics.control.store", "from analytics.contribute.disclosure import new_secret\n"),
    ("analytics.ingest.marc", "def f():\n    from analytics.synthetic.demo import isbn13\n"),
    ("analytics.ingest.marc", "def f():\n    from ..synthetic.demo import isbn13\n"),
    ("analytics.core.config", "import analytics.release.manifest\n"),
    ("analytics.views.trends", "from analytics.tools import bench\n"),
])
def test_the_check_finds_an_upward_import(module, source):
    assert len(violations(source, module)) == 1


def test_the_check_allows_imports_down_and_sideways():
    source = ("from analytics.core import access, months\nfrom analytics.release.trending import SMOOTHING\n"
              "from analytics.views import deselection\nfrom . import benchmark\n")
    assert violations(source, "analytics.views.recommend") == []


def test_analytics_never_imports_streamlit():
    offenders = [p.relative_to(ROOT).as_posix() for p in modules()
                 if any(line.strip().startswith(("import streamlit", "from streamlit"))
                        for line in p.read_text().splitlines())]
    assert offenders == []


def test_every_path_the_docs_name_exists():
    """README and docs/ name files to read; a move must take the docs along."""
    import re

    named = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named |= {(doc.name, m) for m in re.findall(r"`((?:analytics|tests|scripts|pages)/[\w/.-]+\.(?:py|md|csv))`",
                                                     doc.read_text())}
    assert len(named) > 40
    assert sorted(f"{doc}: {path}" for doc, path in named if not (ROOT / path).exists()) == []


def test_the_layout_doc_names_every_stage():
    text = (ROOT / "docs" / "layout.md").read_text()
    assert [stage for stage in STAGES if stage not in ("__main__", "cli") and f"{stage}/" not in text] == []
