"""Read and validate ``params.yaml``, one section per stage (DVC convention).

Each stage module owns a ``DEFAULTS`` dict; a value in ``params.yaml`` must be a
known key with the same type as its default, so a typo or a wrong type is a
one-line error naming the file and the key instead of a traceback later on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import InputError

DEFAULT_PARAMS_FILE = Path("params.yaml")


def read_params(path: str | Path | None = None) -> dict[str, Any]:
    """The whole params file, or ``{}`` when no file is given and none is present."""
    if path is None:
        path = DEFAULT_PARAMS_FILE
        if not path.exists():
            return {}
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(path, "params file not found") from None
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML ({err.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping of stage sections")
    return data


def _check(value: Any, default: Any, where: str, path: Path | str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(path, f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise InputError(path, f"{where} must be a mapping, got {value!r}")
        return {**default, **value}
    if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
        raise InputError(path, f"{where} must be {type(default).__name__}, got {value!r}")
    return value


def resolve(
    name: str,
    defaults: dict[str, Any],
    given: dict[str, Any] | None = None,
    path: str | Path = "params",
) -> dict[str, Any]:
    """``defaults`` overlaid with ``given``: the one merger every stage uses.

    An unknown key or a value of the wrong type is an :class:`InputError` naming
    ``path`` and the key, whether the values came from ``params.yaml``, from
    ``dvc exp run -S`` or from a caller in Python.
    """
    merged = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise InputError(path, f"unknown parameter {name}.{key} (known: {known})")
        merged[key] = _check(value, defaults[key], f"{name}.{key}", path)
    return merged


def section(
    name: str,
    defaults: dict[str, Any],
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Defaults for stage ``name`` overlaid with ``params.yaml`` and then ``overrides``."""
    data = read_params(path)
    shown = path or DEFAULT_PARAMS_FILE
    given = data.get(name) or {}
    if not isinstance(given, dict):
        raise InputError(shown, f"section '{name}' must be a mapping")
    return resolve(name, resolve(name, defaults, given, shown), overrides, shown)


def focus_name(focus: str | None, params_path: Path | None) -> str:
    """The partnership to benchmark: ``--focus`` when given, else ``data.focus``."""
    if focus:
        return focus
    data = read_params(params_path).get("data") or {}
    name = data.get("focus")
    if not name:
        raise InputError(params_path or "params.yaml", "no focus partnership: pass --focus NAME")
    return str(name)
