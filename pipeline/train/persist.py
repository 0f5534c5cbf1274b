"""Save and load the trained models: skops (never pickle) plus a checksum manifest.

Why both: ``skops.io.load`` with an explicit trusted-type list refuses a file that
would build anything but our estimator and scikit-learn parts, so a foreign model
file cannot run code; the manifest's SHA-256 sums catch a file that was edited or
swapped after training, which type checks alone would let through.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import skops.io as sio

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write, read_json, sha256_file, write_json

CLASSIFIER_FILE = "classifier.skops"
MANIFEST_FILE = "manifest.json"
OUT_OF_REPORT_FILE = "out_of_report.npz"  # the train stage's leave-one-report-out predictions
FINETUNED_DIR = "finetuned"  # the sentiment blend's fine-tuned encoder, when it has one
# 2: scikit-learn estimator only; 3: and, when the classifier blends one, a fine-tuned
# encoder in FINETUNED_DIR (safetensors), each of its files in the manifest
FORMAT = "inspections-classifier/3"

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


#: Attributes whose value is a memory address, not learned state.
MEMORY_ADDRESSES = {"_stop_words_id"}


def stable_skops(data: bytes) -> bytes:
    """The same skops archive, byte for byte the same on every run.

    skops names objects and their array files after ``id()``, a memory address, and
    stamps each archive entry with the time, so two fits with identical models wrote
    different bytes (and DVC saw a new model each run). Here ids become 1, 2, ... in
    the order the schema first mentions them, array files are renamed to match, and
    entries carry a fixed date; the loaded model is the same object. scikit-learn's
    ``TfidfVectorizer`` also keeps ``_stop_words_id``, the ``id()`` of its stop-word
    list, used only to warn once about inconsistent stop words; it is saved as ``None``
    (what an unfitted vectorizer holds), so the warning check simply runs again.
    """
    import io
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    ids: dict[str, str] = {}

    def renumber(value: Any) -> str:
        return ids.setdefault(str(value), str(len(ids) + 1))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in MEMORY_ADDRESSES and isinstance(value, dict):
                    out[key] = walk({**value, "__class__": "NoneType", "content": "null"})
                elif key == "__id__":
                    out[key] = int(renumber(value))
                elif key == "file" and isinstance(value, str) and value.endswith(".npy"):
                    out[key] = f"{renumber(value[:-4])}.npy"
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    schema = walk(schema)
    renamed = {"schema.json": json.dumps(schema, indent=2).encode("utf-8")}
    for name, content in entries.items():
        if name.endswith(".npy") and name[:-4] in ids:
            renamed[f"{ids[name[:-4]]}.npy"] = content
        elif name != "schema.json":
            renamed[name] = content
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(renamed, key=lambda n: (n != "schema.json", n)):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)),
                             renamed[name])
    return buffer.getvalue()


def save_finetuned(out_dir: Path, model: Any | None) -> list[str]:
    """Write the fine-tuned encoder to ``out_dir/finetuned`` (or remove an earlier
    run's when there is none); returns its files' names relative to ``out_dir``.

    Written to a temporary folder first and swapped in, so an interrupted save
    leaves the earlier folder or the new one, never a mixture."""
    out_dir = Path(out_dir)
    final = out_dir / FINETUNED_DIR
    if model is None:
        shutil.rmtree(final, ignore_errors=True)
        return []
    tmp = Path(tempfile.mkdtemp(prefix=f".{FINETUNED_DIR}.", dir=out_dir))
    try:
        model.save(tmp)
        old = out_dir / f".{FINETUNED_DIR}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(p.relative_to(out_dir).as_posix() for p in final.rglob("*") if p.is_file())


def save_models(
    out_dir: Path, classifier: Any, info: dict[str, Any],
    files: dict[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write the classifier, its fine-tuned encoder if it has one, the extra ``files``
    (name -> writer of that path) and the manifest with every file's checksum; a
    file of an earlier run not written now is removed, so the folder holds one
    training run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / CLASSIFIER_FILE, "wb") as fh:
        fh.write(stable_skops(sio.dumps(classifier)))
    tuned = save_finetuned(out_dir, getattr(classifier, "finetuned_", None))
    files = files or {}
    for name, write in files.items():
        write(out_dir / name)
    if OUT_OF_REPORT_FILE not in files:
        (out_dir / OUT_OF_REPORT_FILE).unlink(missing_ok=True)
    manifest = {
        "format": FORMAT,
        "files": {name: sha256_file(out_dir / name)
                  for name in [CLASSIFIER_FILE, *tuned, *files]},
        "info": info,
    }
    write_json(out_dir / MANIFEST_FILE, manifest)
    return out_dir / MANIFEST_FILE


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


def load_models(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """(classifier, manifest info), every file verified against the manifest; a
    classifier that blends a fine-tuned encoder gets it back from its folder."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest)
    classifier = load_classifier(model_dir / CLASSIFIER_FILE)
    if classifier.finetune_weight:
        from pipeline.train.finetune import FinetunedSentiment

        folder = model_dir / FINETUNED_DIR
        if not any(Path(name).parts[0] == FINETUNED_DIR for name in manifest["files"]):
            raise InputError(folder, "the classifier blends a fine-tuned encoder that the "
                                     "manifest does not list: retrain")
        classifier.set_finetuned(FinetunedSentiment.load(folder))
    return classifier, manifest.get("info", {})
