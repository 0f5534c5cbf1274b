"""The parameter layer: one merger, defaults in the code, params.yaml agreeing with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.errors import InputError
from pipeline.core.params import resolve, section
from pipeline.stages import STAGES, all_defaults

REPO = Path(__file__).resolve().parents[2]


def test_params_yaml_repeats_every_default_of_the_code():
    given = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for name, defaults in all_defaults().items():
        assert given.get(name) == defaults, f"params.yaml section {name!r} differs from the code"
    extra = set(given) - set(all_defaults()) - {"data"}
    assert not extra, f"params.yaml sections no stage reads: {extra}"


def test_every_stage_is_a_package_and_a_dvc_stage():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert list(stages) == list(STAGES)
    for name in STAGES:
        assert (REPO / "pipeline" / name / "__init__.py").exists(), name
        assert stages[name].get("desc"), f"stage {name} has no desc"


def test_resolve_refuses_unknown_keys_and_wrong_types():
    defaults = {"n": 3, "rate": 0.5, "on": True, "names": ["a"]}
    assert resolve("s", defaults, {"rate": 1}) == {**defaults, "rate": 1.0}
    with pytest.raises(InputError, match=r"params: unknown parameter s\.m \(known: "):
        resolve("s", defaults, {"m": 1})
    with pytest.raises(InputError, match=r"s\.on must be true or false"):
        resolve("s", defaults, {"on": "yes"})
    with pytest.raises(InputError, match=r"s\.n must be int, got 'x'"):
        resolve("s", defaults, {"n": "x"})


def test_section_overlays_file_then_overrides(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("s:\n  n: 4\n", encoding="utf-8")
    assert section("s", {"n": 3, "rate": 0.5}, path) == {"n": 4, "rate": 0.5}
    assert section("s", {"n": 3, "rate": 0.5}, path, {"rate": 2.0})["rate"] == 2.0
    with pytest.raises(InputError, match=str(path)):
        section("s", {"n": 3}, path, {"bogus": 1})


def test_params_command_prints_values_in_force(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("themes:\n  k_min: 6\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["params", "--params", str(path)])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["themes"]["k_min"] == 6
    assert shown["extract"] == all_defaults()["extract"]
