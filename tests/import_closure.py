"""The introdetect modules a script imports, directly or through other modules (static,
from the source: every ``import introdetect...`` / ``from introdetect... import`` at any
depth, so function-level imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("introdetect")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("introdetect"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}  # submodules
    return out


def closure(script: Path) -> set[Path]:
    """Files under src/ that ``script`` needs (package ``__init__`` files included)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        f = todo.pop()
        for name in _imports(f):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # parent packages run their __init__
                m = _module_file(".".join(parts[:i]))
                if m is not None and m not in seen:
                    seen.add(m)
                    todo.append(m)
    return seen


def sync_dvc_yaml(path: Path = ROOT / "dvc.yaml") -> None:
    """Rewrite each stage's code deps in dvc.yaml to its import closure (a maintenance
    helper: ``python tests/import_closure.py``)."""
    import re

    text = path.read_text(encoding="utf-8")
    out, stage = [], None
    for line in text.splitlines():
        m = re.match(r"^  (\w+):$", line)
        if m:
            stage = m[1]
        if re.match(r"^      - (src|stages)/", line):
            continue  # dropped; re-added after "deps:"
        out.append(line)
        if line.strip() == "deps:" and stage:
            script = ROOT / "stages" / f"{stage}.py"
            code = [f"stages/{stage}.py"] + sorted(
                str(p.relative_to(ROOT)) for p in closure(script)
            )
            out += [f"      - {c}" for c in code]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sync_dvc_yaml()
