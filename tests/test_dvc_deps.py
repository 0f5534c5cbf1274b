"""dvc.yaml names, for every stage, all the code that stage runs.

A stage's code is its own package plus everything it imports from ``pipeline``,
followed transitively through the import statements (function-level imports
included), plus the CLI module that DVC calls. A dependency missed here would let
``dvc repro`` keep outputs that the edited code would no longer produce.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from pipeline.stages import STAGES

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pipeline"


def module_file(name: str) -> Path | None:
    """The file of module ``pipeline.x.y`` (a module or a package's __init__)."""
    parts = name.split(".")
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every ``pipeline`` module a file imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("pipeline"):
            found.add(node.module)
            # `from pipeline.x import y` may name a module y
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if module_file(f"{node.module}.{a.name}"))
    return found


def code_of_stage(stage: str) -> set[Path]:
    todo = list((PACKAGE / stage).rglob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            target = module_file(name)
            if target is not None:
                todo.append(target)
                # importing pipeline.a.b runs pipeline/a/__init__.py too
                init = target.parent / "__init__.py"
                if init.exists() and init != PACKAGE / "__init__.py":
                    todo.append(init)
    return seen


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_depends_on_all_the_code_it_runs(stage: str) -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    deps = [str(d) for d in stages[stage]["deps"]]
    assert "pipeline/cli.py" in deps, f"{stage}: DVC runs it through pipeline/cli.py"
    missing = sorted(str(p.relative_to(REPO)) for p in code_of_stage(stage)
                     if not covered(p, deps))
    assert not missing, f"dvc.yaml stage {stage} lacks deps on {missing}"


def test_the_top_package_runs_no_code() -> None:
    """pipeline/__init__.py runs on every import but is in no stage's deps: keep it empty."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
               for n in tree.body)


def test_the_check_sees_a_missing_dependency() -> None:
    assert covered(PACKAGE / "core" / "io.py", ["pipeline/core"])
    assert not covered(PACKAGE / "train" / "model.py", ["pipeline/classify"])
    assert PACKAGE / "train" / "model.py" in code_of_stage("classify")
    assert PACKAGE / "themes" / "stage.py" not in code_of_stage("compare")
