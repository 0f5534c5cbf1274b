"""Run a packaged sentence encoder: tokenise, forward pass, mean-pool sentences and spans.

Why not ``SentenceTransformer.encode``: classifying a report is almost all
encoding, and two things make it cheaper here.

- **ONNX Runtime.** On two CPU cores it runs all-mpnet-base-v2 faster than
  PyTorch eager mode (fused kernels, no Python per layer) with the same vectors
  (cosine > 0.9999, checked in the tests). Nothing is downloaded: the encoder's
  own installed weights are exported once, on first use, into the cache folder
  beside the unpacked models (``pipeline.encoders.cache_root``), atomically, so
  an interrupted export is never loaded. ``INSPECTIONS_RUNTIME=torch`` runs the
  same transformer in PyTorch instead.
- **Spans from the sentence's own pass.** The sentiment model reads the first
  and last clause of a contrastive sentence. Pooling the clause's tokens out of
  the whole sentence's pass costs nothing extra, where encoding each clause as
  a text of its own added a tenth to the work; leave-one-report-out scores were
  the same either way (sentiment macro-F1 0.774 both).

- **int8, on request.** ``train.encoder_precision: int8`` encodes with a
  dynamically quantised copy of the export (``quantize``), made once and cached
  beside it, and kept only if it reads a fixed set of sentences as the fp32
  export does (``check_quantized``); the precision is recorded in the model
  manifest and classify uses the one the models were trained with.

Sessions use every graph optimisation, one intra-operator thread per core and
sequential execution (``session_options``). Texts are sorted by length and
padded per batch, so little goes on padding.

Only the transformer runs in a backend; mean pooling and normalisation, the two
modules the packaged models end with, are done here in numpy, and any other
module chain is refused rather than encoded wrongly.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write, read_json
from pipeline.core.log import progress

# Set before sentence-transformers / transformers are imported anywhere: models are
# only ever loaded from local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OPSET = 17
RUNTIMES = ("onnx", "torch")
PRECISIONS = ("fp32", "int8")
QUANTIZE_VERSION = 3  # in the int8 file's name: a change to quantize() makes it anew
#: Sentences of our own, in the reports' registers, that an int8 file must read as its
#: fp32 export does (mean cosine at least MIN_INT8_COSINE) before it is kept.
CHECK_TEXTS = (
    "Leaders had a clear vision for improving outcomes for children and young people.",
    "The quality of chronologies was variable and needed to be improved.",
    "Staff told us they felt well supported by their managers.",
    "The partnership was at an early stage of evaluating the impact of its work.",
    "The child protection committee met quarterly and was chaired independently.",
    "Just under half of the plans we read set out clear and measurable outcomes.",
    "While young people were involved in planning, their views did not always shape decisions.",
    "Inspectors read the records of 100 children and young people.",
)
MIN_INT8_COSINE = 0.97
DEVICES = ("auto", "cpu", "cuda")
Span = tuple[int, int]
# (input_ids, attention_mask) -> hidden states (batch, tokens, dim)
Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]


def runtime() -> str:
    """``onnx`` unless ``INSPECTIONS_RUNTIME`` names another known runtime."""
    name = os.environ.get("INSPECTIONS_RUNTIME", "onnx").strip().lower() or "onnx"
    if name not in RUNTIMES:
        raise InputError("INSPECTIONS_RUNTIME", f"unknown runtime {name!r} "
                                                f"(known: {', '.join(RUNTIMES)})")
    return name


def cuda_available() -> bool:
    """Whether a CUDA device can be used (asked of PyTorch, which both runtimes need)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - a dependency
        return False
    return bool(torch.cuda.is_available())


def onnx_cuda_available() -> bool:
    """Whether the installed ONNX Runtime has its CUDA provider (onnxruntime-gpu)."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def select_device(device: str = "auto", backend: str | None = None,
                  field: str = "embed.device") -> tuple[str, str]:
    """(runtime, device) to encode with: ``auto`` takes CUDA when there is one.

    On a GPU, ONNX Runtime's CUDA provider when ``onnxruntime-gpu`` is installed,
    else PyTorch on CUDA; on a CPU, the runtime of :func:`runtime` (ONNX unless
    ``INSPECTIONS_RUNTIME`` says otherwise), unchanged. ``cuda`` without a GPU is
    a one-line error rather than a silent fall-back to the CPU, which would be ten
    times slower than the user planned for.
    """
    backend = backend or runtime()
    if device not in DEVICES:
        raise InputError("params", f"unknown {field} {device!r} (known: {', '.join(DEVICES)})")
    if device == "cpu" or (device == "auto" and not cuda_available()):
        return backend, "cpu"
    if not cuda_available():
        raise InputError("params", f"{field} is cuda but no CUDA device is available "
                                   "(use auto or cpu)")
    if backend == "onnx" and not onnx_cuda_available():
        return "torch", "cuda"
    return backend, "cuda"


def check_layout(model_dir: Path) -> tuple[int, bool]:
    """(max tokens, normalised?) of a Transformer -> mean Pooling [-> Normalize] model."""
    modules = [str(m.get("type", "")).rsplit(".", 1)[-1]
               for m in read_json(model_dir / "modules.json")]
    if modules[:2] != ["Transformer", "Pooling"] or modules[2:] not in ([], ["Normalize"]):
        raise InputError(model_dir, f"unsupported encoder modules {modules}")
    pooling = read_json(model_dir / "1_Pooling" / "config.json")
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise InputError(model_dir, f"unsupported pooling {modes}")
    config = read_json(model_dir / "sentence_bert_config.json")
    return int(config.get("max_seq_length") or 512), modules[2:] == ["Normalize"]


def _hidden_states_module(model_dir: Path):
    """The transformer, called by keyword: positional order differs between architectures."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    class HiddenStates(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)[0]

    return HiddenStates(AutoModel.from_pretrained(str(model_dir)).eval())


def export(model_dir: Path, target: Path) -> Path:
    """Write the transformer of the model in ``model_dir`` to ``target`` as ONNX."""
    import torch
    from transformers import AutoTokenizer

    module = _hidden_states_module(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sample = tokenizer(["An example sentence.", "A second, longer example sentence here."],
                       padding=True, return_tensors="pt")
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "hidden": {0: "batch", 1: "tokens"}}
    with atomic_write(target, "wb") as fh, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (sample["input_ids"], sample["attention_mask"]), fh,
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return target


def check_precision(precision: str, field: str = "train.encoder_precision") -> str:
    """``precision`` if known; else a one-line params error naming ``field``."""
    if precision not in PRECISIONS:
        raise InputError("params", f"unknown {field} {precision!r} "
                                   f"(known: {', '.join(PRECISIONS)})")
    return precision


def down_projections(onnx_file: Path) -> list[str]:
    """The MatMul nodes whose weight narrows its input (the feed-forward block's
    second layer, fed by the GELU's wide, outlier-heavy activations)."""
    import onnx

    model = onnx.load(str(onnx_file), load_external_data=False)
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul"
            and len(shapes.get(n.input[1], ())) == 2
            and shapes[n.input[1]][0] > shapes[n.input[1]][1]]


def check_quantized(model_dir: Path, fp32_path: Path, int8_path: Path) -> float:
    """Mean cosine of the int8 file's vectors to the fp32 export's on CHECK_TEXTS; an
    InputError naming the int8 file where it is below MIN_INT8_COSINE.

    Why: the int8 file is made on each machine by whatever onnx and onnxruntime are
    installed. A fresh install in December 2026 (onnxruntime 1.31-1.32, onnx 1.23,
    transformers 5.25, torch 2.13) quantised all-mpnet-base-v2 into an encoder whose
    vectors had a mean cosine of 0.007 to its fp32 export's, where an earlier install
    gave 0.99 (MiniLM stayed at 0.99); models trained on those vectors lost 0.03 of sentiment
    accuracy and 0.05 of QI top-1, and nothing failed.
    """
    texts = list(CHECK_TEXTS)
    exact, _ = PooledEncoder(model_dir, onnx_forward(fp32_path)).encode(texts)
    quick, _ = PooledEncoder(model_dir, onnx_forward(int8_path), per_text=True).encode(texts)
    exact = exact / np.linalg.norm(exact, axis=1, keepdims=True)
    quick = quick / np.linalg.norm(quick, axis=1, keepdims=True)
    cosine = float(np.mean(np.sum(exact * quick, axis=1)))
    if cosine < MIN_INT8_COSINE:
        raise InputError(int8_path, f"the int8 encoder made by this onnxruntime reads unlike "
                                    f"its fp32 export (mean cosine {cosine:.3f} on the check "
                                    f"sentences, below {MIN_INT8_COSINE}): use encoder_precision "
                                    f"fp32")
    return cosine


def quantize(fp32_path: Path, target: Path, model_dir: Path | None = None) -> Path:
    """int8 dynamic quantisation of an exported encoder, written atomically beside it;
    with ``model_dir``, only if it reads like the fp32 export (``check_quantized``).

    Weights of the MatMuls become QInt8 per output channel and their inputs are
    quantised on the fly, except the feed-forward down-projections, which stay
    fp32: quantising their inputs (one scale per tensor over GELU outputs with
    a few huge values) took all-mpnet-base-v2's cosine to its fp32 vectors down
    to 0.87 on average (0.75 at worst) on a sample report; without them 0.99."""
    import logging
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as tmp:
        work = Path(tmp) / target.name
        try:
            root.setLevel(logging.ERROR)  # the quantiser's pre-processing advice
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(fp32_path), str(work), weight_type=QuantType.QInt8,
                                 per_channel=True, op_types_to_quantize=["MatMul"],
                                 nodes_to_exclude=down_projections(fp32_path))
        finally:
            root.setLevel(level)
        if model_dir is not None:
            check_quantized(model_dir, fp32_path, work)
        os.replace(work, target)
    return target


def cpu_threads() -> int:
    """Cores this process may run on (:func:`pipeline.core.engine.cores`)."""
    from pipeline.core.engine import cores

    return cores()


def session_options():
    """ONNX Runtime options for encoding: every graph optimisation, one thread per
    core inside an operator, operators run one after another (a transformer is a
    chain, so inter-operator threads would only contend with the intra-operator
    ones)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def onnx_forward(onnx_path: Path, device: str = "cpu") -> Forward:
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(onnx_path), session_options(), providers=providers)
    except Exception as err:  # noqa: BLE001 - any failure means an unusable file
        raise InputError(onnx_path, f"cannot load the exported encoder ({err}); delete it to "
                                    "export again") from None

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    return forward


def torch_forward(model_dir: Path, device: str = "cpu") -> Forward:
    import torch

    module = _hidden_states_module(model_dir).to(device)

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            hidden = module(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            return hidden.float().cpu().numpy()

    return forward


class PooledEncoder:
    """Mean-pooled (and, like the packaged models, normalised) vectors of texts and of
    character spans inside them."""

    def __init__(self, model_dir: str | Path, forward: Forward, per_text: bool = False):
        from transformers import AutoTokenizer

        self.model_dir = Path(model_dir)
        self.max_tokens, self.normalize = check_layout(self.model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        self.forward = forward
        self.batch_size = 16
        self.per_text = per_text

    def encode(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(one vector per text, per text an array with one vector per span).

        Spans are character offsets into the text with surrounding whitespace
        stripped. A span whose tokens were all truncated away gets the text's
        vector. Batches hold texts of similar length, so little goes on padding.
        """
        # The int8 export quantises activations with one scale per batch, so a text's
        # vector moved with its batch-mates (up to 0.05 per coordinate, enough to flip
        # about 2% of labels): a report added alone, or sent to a Dask worker, read
        # differently from the same report in a full run. One text per pass makes a
        # vector depend on its text only, for about 15% more time on two cores.
        batch_size = 1 if self.per_text else batch_size or self.batch_size
        texts = [t.strip() for t in texts]
        spans = spans if spans is not None else [()] * len(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        vectors: np.ndarray | None = None
        span_vectors: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(texts)
        batches = range(0, len(texts), batch_size)
        for start in progress(batches, f"encoding {len(texts)} sentences ({self.model_dir.name})"):
            index = order[start: start + batch_size]
            batch = self.tokenizer([texts[i] for i in index], padding=True,
                                   truncation="longest_first", max_length=self.max_tokens,
                                   return_offsets_mapping=True, return_tensors="np")
            offsets = batch["offset_mapping"]
            mask = batch["attention_mask"].astype(np.int64)
            hidden = self.forward(batch["input_ids"].astype(np.int64), mask)
            pooled = self._pool(hidden, mask.astype(np.float32))
            if vectors is None:
                vectors = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[index] = pooled
            for row, i in enumerate(index):
                if spans[i]:
                    span_vectors[i] = self._spans(hidden[row], offsets[row], mask[row],
                                                  spans[i], pooled[row])
        if vectors is None:
            raise ValueError("encode() needs at least one text")
        return vectors, span_vectors

    def _pool(self, hidden: np.ndarray, weights: np.ndarray) -> np.ndarray:
        pooled = (hidden * weights[..., None]).sum(axis=1) / np.clip(
            weights.sum(axis=1, keepdims=True), 1e-9, None)
        if self.normalize:
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)

    def _spans(self, hidden: np.ndarray, offsets: np.ndarray, mask: np.ndarray,
               spans: Sequence[Span], whole: np.ndarray) -> np.ndarray:
        real = (mask > 0) & (offsets[:, 1] > offsets[:, 0])  # not padding, not [CLS]/[SEP]
        weights = np.stack([real & (offsets[:, 0] >= s) & (offsets[:, 1] <= e)
                            for s, e in spans]).astype(np.float32)
        out = self._pool(np.broadcast_to(hidden, (len(spans), *hidden.shape)), weights)
        empty = weights.sum(axis=1) == 0
        out[empty] = whole
        return out


_LOAD_LOCK = threading.Lock()  # one first load at a time: see load()


def load(name: str, device: str = "auto", precision: str = "fp32") -> PooledEncoder:
    """The named packaged encoder (``pipeline.encoders``) on the selected runtime and
    device; the ONNX file is exported on first use. Loaded once per process (the
    session is kept), so a second report classified in the same process, or a Dask
    worker's next task, starts warm.

    ``int8`` runs the int8-quantised export (made once from the fp32 one and kept
    beside it) in ONNX Runtime on the CPU whatever ``device`` says: its vectors are
    those of that file, which models trained on int8 vectors need."""
    check_precision(precision, "encoder precision")
    if precision == "int8":
        backend, chosen = "onnx", "cpu"
    else:
        backend, chosen = select_device(device)
    # One thread loads at a time: a Dask worker runs several tasks in threads, and two
    # first loads at once raced in transformers' lazy imports ("cannot import name
    # 'AutoTokenizer'") and would have built two sessions; later calls hit the cache.
    with _LOAD_LOCK:
        return _load(name, backend, chosen, precision)


def onnx_path(name: str, precision: str = "fp32") -> Path:
    """The exported (and, for int8, quantised) ONNX file of a packaged encoder,
    made on first use."""
    from pipeline.embed.encoders import cache_root, model_path

    folder = Path(model_path(name))
    target = cache_root() / "onnx" / f"{name}-{_weights_key(folder)}.onnx"
    if not target.exists():
        export(folder, target)
    if precision == "fp32":
        return target
    quantized = target.with_name(f"{target.stem}-{precision}-q{QUANTIZE_VERSION}.onnx")
    if not quantized.exists():
        quantize(target, quantized, folder)
    return quantized


@lru_cache(maxsize=4)
def _load(name: str, backend: str, device: str = "cpu", precision: str = "fp32") -> PooledEncoder:
    from pipeline.embed.encoders import model_path

    folder = Path(model_path(name))
    check_layout(folder)
    if backend == "torch":
        return PooledEncoder(folder, torch_forward(folder, device))
    return PooledEncoder(folder, onnx_forward(onnx_path(name, precision), device),
                         per_text=precision == "int8")


def _weights_key(model_dir: Path) -> str:
    """Names and sizes of the weight files and the exporter: a change exports anew."""
    import torch

    files = sorted(p for p in model_dir.iterdir() if p.suffix in {".safetensors", ".bin"})
    stamp = "|".join(f"{p.name}:{p.stat().st_size}" for p in files)
    return hashlib.sha256(f"{stamp}|opset{OPSET}|torch{torch.__version__}".encode()) \
        .hexdigest()[:12]
