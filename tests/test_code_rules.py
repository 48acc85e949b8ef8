"""Rules of the house, checked: short functions, dvc.yaml deps that are exactly what each
stage imports, a README parameter table that matches params.yaml, every imported package
declared."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

import yaml
from import_closure import ROOT, closure

from introdetect.params import FEATURE_IDENTITY

MAX_FUNCTION_LINES = 80


def test_no_function_in_src_is_longer_than_80_lines():
    long = []
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n})")
    assert not long, long


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_each_stage_depends_on_exactly_the_modules_it_imports():
    for name, stage in _stages().items():
        script = ROOT / "stages" / f"{name}.py"
        assert stage["cmd"].startswith(f"python stages/{name}.py"), name
        code = {d for d in stage["deps"] if d.startswith(("src/", "stages/"))}
        wanted = {f"stages/{name}.py"} | {str(p.relative_to(ROOT)) for p in closure(script)}
        assert code == wanted, (name, sorted(code ^ wanted))


def test_stage_paths_are_written_only_in_dvc_yaml():
    """No stage module hard-codes a pipeline path; they come from the cmd line."""
    for path in (ROOT / "src/introdetect/pipeline").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\"(data|models|predictions|metrics)/", text), path.name


def test_train_lists_the_feature_identity_it_stores():
    params = _stages()["train"]["params"]
    listed = {
        p.split(".", 1)[1] for p in params if isinstance(p, str) and p.startswith("features.")
    }
    assert listed == set(FEATURE_IDENTITY)


def _readme_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+\.[a-z0-9_]+)` \| `([^`]*)` \|", text, flags=re.M)
    return dict(rows)


def test_readme_parameter_table_matches_params_yaml():
    table = _readme_table()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    flat = {f"{s}.{k}": v for s, vals in params.items() for k, v in vals.items()}
    assert set(table) == set(flat), sorted(set(table) ^ set(flat))
    for key, default in table.items():
        assert yaml.safe_load(default) == flat[key], (key, default, flat[key])


# import name -> distribution name, where they differ
_DIST = {
    "yaml": "pyyaml",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "espeakng_loader": "espeakng-loader",
}


def test_every_imported_package_is_declared():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=\[ ]", d)[0].lower() for d in deps["dependencies"]}
    declared |= {
        re.split(r"[<>=\[ ]", d)[0].lower()
        for extra in deps.get("optional-dependencies", {}).values()
        for d in extra
    }
    imported = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"introdetect"}
    missing = {m for m in third_party if _DIST.get(m, m).lower() not in declared}
    assert not missing, missing
