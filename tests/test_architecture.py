"""The map matches the code: ARCHITECTURE.md's packages table names every module, and its "may import"
column, read as rules, allows every import the code makes (lazy imports inside functions included).

The column's grammar, so that it stays prose a person reads and a rule this test checks: clauses separated by
';'. The first lists what the whole package may import, comma-separated: a package name (a parenthesis after
it is a note for the reader), `X and below` (X and everything X may import), `everything above` (every package
of an earlier row), `any engine package` (every package but ui), `nothing of ours`. A later clause `name.py also a, b` lets
one module import more. `never gradio` / `the only place gradio is imported` are checked too: only ui/ imports
gradio.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workbench"


def table() -> list[tuple[str, str, str]]:
    """(package, job text, may-import text) per row of the packages table, in order."""
    rows = []
    for line in (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `(\w+)/` \| (.*) \| ([^|]*) \|$", line.strip())
        if m:
            rows.append(m.groups())
    return rows


def rules() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """({package: packages it may import}, {"package.module": packages that one module may import besides})."""
    allowed: dict[str, set[str]] = {}
    extra: dict[str, set[str]] = {}
    names = [pkg for pkg, _, _ in table()]
    for pkg, _job, may in table():
        notes_out = re.sub(r"\([^)]*\)", "", may)  # a note may hold commas: it is prose, not a rule
        clauses = [c.strip() for c in notes_out.split(";") if c.strip()]
        own: set[str] = set()
        for item in clauses[0].split(","):
            own |= _item(item, pkg, names, allowed)
        allowed[pkg] = own
        for clause in clauses[1:]:
            m = re.match(r"`?(\w+)(?:\.py)?`? also (.+)$", clause)
            if m:
                more = [_item(i, pkg, names, allowed) for i in m.group(2).split(",")]
                extra[f"{pkg}.{m.group(1)}"] = set().union(*more)
            else:
                assert "gradio" in clause, f"{pkg}: a clause this test cannot read: {clause!r}"
    return allowed, extra


def _item(item: str, pkg: str, names: list[str], allowed: dict[str, set[str]]) -> set[str]:
    item = item.strip()
    if item == "nothing of ours":
        return set()
    if item == "everything above":
        return set(names[: names.index(pkg)])
    if item == "any engine package":
        return {n for n in names if n not in ("ui", pkg)}
    m = re.match(r"(\w+) and below$", item)
    if m:
        assert m.group(1) in allowed, f"{pkg}: '{item}' names a package of a later row"
        return {m.group(1)} | allowed[m.group(1)]
    assert item in names, f"{pkg}: '{item}' is not a package of the table"
    return {item}


def modules() -> dict[str, Path]:
    """'pkg.module' (or 'pkg.sub.module', or a top-level 'module') → file, for every module of workbench/."""
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(parts)] = f
    return out


def imports(f: Path) -> set[str]:
    """Every module a file imports (absolute names), lazy ones included; `if TYPE_CHECKING:` blocks skipped."""
    tree = ast.parse(f.read_text(encoding="utf-8"))
    skip = {id(x) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for b in node.body for x in ast.walk(b)}
    here = f.relative_to(ROOT).with_suffix("").parts
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:-node.level] if f.name != "__init__.py" else here[:len(here) - node.level]
                out.add(".".join([*base, *([node.module] if node.module else [])]))
            else:
                out.add(node.module or "")
    return out


def test_every_import_is_one_the_map_allows():
    allowed, extra = rules()
    wrong = []
    for name, f in modules().items():
        parts = name.split(".")
        if len(parts) == 1:  # workbench/__main__.py: the entry point, `python -m workbench`
            continue
        pkg, module = parts[0], ".".join(parts[:2])
        ok = {pkg} | allowed.get(pkg, set()) | extra.get(module, set()) | extra.get(f"{pkg}.{parts[-1]}", set())
        for target in sorted(imports(f)):
            if target == "gradio" or target.startswith("gradio."):
                if pkg != "ui":
                    wrong.append(f"{name} imports gradio (only ui/ may)")
                continue
            if not target.startswith("workbench."):
                continue
            other = target.split(".")[1]
            if other not in ok:
                wrong.append(f"{name} imports {target}, and `{pkg}/` may import: {', '.join(sorted(ok - {pkg}))}")
    assert not wrong, "imports the map does not allow:\n" + "\n".join(wrong)


def test_every_module_is_named_in_the_map():
    text = {pkg: job for pkg, job, _ in table()}
    doc = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for name, f in modules().items():
        parts = name.split(".")
        if len(parts) == 1:
            if f"{f.name}" not in doc:
                missing.append(str(f.relative_to(ROOT)))
            continue
        if f.name == "__init__.py" and len(f.read_text(encoding="utf-8").splitlines()) < 10:
            continue  # a package marker with a docstring: the row itself names the package
        if parts[0] not in text:
            missing.append(f"{parts[0]}/ (no row)")
        elif f"`{f.name}`" not in text[parts[0]] and f"{f.name}`" not in text[parts[0]]:
            missing.append(str(f.relative_to(ROOT)))
    assert not missing, "modules the packages table does not name:\n" + "\n".join(missing)


def test_the_rules_read_as_written():
    """The grammar above, on the table as it is: a sanity check that the parse means what the prose says."""
    allowed, extra = rules()
    assert allowed["core"] == set()
    assert "gradio" not in str(allowed) and "ui" not in allowed["cli"] and "ui" not in allowed["jobs"]
    assert {"core", "config", "models"} <= allowed["training"]
    assert all("ui" not in v for k, v in allowed.items() if k != "ui")
