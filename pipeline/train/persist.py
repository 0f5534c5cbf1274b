"""Save and load the trained models: skops (never pickle) plus a checksum manifest.

Why both: ``skops.io.load`` with an explicit trusted-type list refuses a file that
would build anything but our estimator and scikit-learn parts, so a foreign model
file cannot run code; the manifest's SHA-256 sums catch a file that was edited or
swapped after training (including the fine-tuned encoder's weights), which type
checks alone would let through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import skops.io as sio

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write, read_json, sha256_file, write_json

CLASSIFIER_FILE = "classifier.skops"
MANIFEST_FILE = "manifest.json"
ENCODER_DIR = "encoder"
FORMAT = "inspections-classifier/1"

# Every type a saved SegmentClassifier holds; anything else in a file is refused.
TRUSTED_TYPES = [
    "pipeline.train.model.SegmentClassifier",
    "pipeline.train.model.SoftmaxRegression",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "numpy.ndarray",
    "builtins.float",
    "builtins.int",
    "builtins.str",
    "builtins.tuple",
    "builtins.list",
    "builtins.dict",
    "builtins.bool",
    "builtins.NoneType",
]


def save_models(
    out_dir: Path, classifier: Any, info: dict[str, Any], encoder: Any | None = None
) -> Path:
    """Write the classifier (and a fine-tuned encoder, if any) and the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / CLASSIFIER_FILE, "wb") as fh:
        fh.write(sio.dumps(classifier))
    encoder_dir = out_dir / ENCODER_DIR
    if encoder is not None:
        _save_encoder(encoder, encoder_dir)
    elif encoder_dir.exists():
        _remove_tree(encoder_dir)
    files = [CLASSIFIER_FILE]
    if encoder is not None:
        files += sorted(
            str(p.relative_to(out_dir)) for p in encoder_dir.rglob("*") if p.is_file()
        )
    manifest = {
        "format": FORMAT,
        "finetuned_encoder": encoder is not None,
        "files": {name: sha256_file(out_dir / name) for name in files},
        "info": info,
    }
    write_json(out_dir / MANIFEST_FILE, manifest)
    return out_dir / MANIFEST_FILE


def _save_encoder(encoder: Any, encoder_dir: Path) -> None:
    """Save beside the target and swap in, so a crash never leaves half an encoder."""
    tmp = encoder_dir.with_name(f".{encoder_dir.name}.tmp")
    if tmp.exists():
        _remove_tree(tmp)
    encoder.save(str(tmp), safe_serialization=True)
    if encoder_dir.exists():
        _remove_tree(encoder_dir)
    tmp.rename(encoder_dir)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def read_manifest(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / MANIFEST_FILE
    if not path.exists():
        raise InputError(path, "no model manifest here: run the train stage first")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(path, f"not a model manifest of this tool (expected format {FORMAT})")
    if not isinstance(manifest.get("files"), dict) or CLASSIFIER_FILE not in manifest["files"]:
        raise InputError(path, "model manifest lists no classifier file")
    return manifest


def verify_files(model_dir: Path, manifest: dict[str, Any]) -> None:
    for name, digest in manifest["files"].items():
        path = Path(model_dir) / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise InputError(path, "model manifest names a file outside the model folder")
        if not path.is_file():
            raise InputError(path, "model file missing: retrain or restore the model folder")
        if sha256_file(path) != digest:
            raise InputError(
                path, "model file changed since training (checksum mismatch): refusing to load"
            )


def load_classifier(path: Path) -> Any:
    """Load one skops file, trusting only TRUSTED_TYPES; anything else is an InputError."""
    from pipeline.train.model import SegmentClassifier

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "model file not found") from None
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    except Exception as err:  # noqa: BLE001 - any parse failure means "not our model"
        raise InputError(path, f"not a skops model file ({err.__class__.__name__})") from None
    if untrusted:
        raise InputError(path, f"model file holds untrusted types: {', '.join(untrusted[:5])}")
    try:
        model = sio.loads(data, trusted=TRUSTED_TYPES)
    except Exception as err:  # noqa: BLE001
        raise InputError(path, f"cannot load model ({err.__class__.__name__}: {err})") from None
    if not isinstance(model, SegmentClassifier) or not hasattr(model, "qi_model_"):
        raise InputError(path, "model file does not hold a trained segment classifier")
    return model


def load_models(model_dir: Path) -> tuple[Any, Path | None, dict[str, Any]]:
    """(classifier, fine-tuned encoder folder or None, manifest info), all verified."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest)
    classifier = load_classifier(model_dir / CLASSIFIER_FILE)
    encoder_dir = model_dir / ENCODER_DIR if manifest.get("finetuned_encoder") else None
    return classifier, encoder_dir, manifest.get("info", {})


def manifest_json(model_dir: Path) -> str:
    return json.dumps(read_manifest(model_dir), indent=1)
