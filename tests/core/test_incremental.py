"""Per-report caching, duplicates, reproducible outputs and the Dask engine.

Three or four sample reports, so each test takes seconds: adding a report reads
and segments only that report; removing one removes its outputs; two copies of a
report are analysed once; the same inputs give byte-identical outputs, locally
and through a Dask cluster.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.extract.stage import extract_path
from pipeline.segment import stage as segment

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


def _corpus(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SAMPLE / f"{name}.pdf", folder / f"{name}.pdf")
    return folder


def _run(pdfs: Path, out: Path, cache: Path | None = None, scheduler: str = "") -> list:
    errors = extract_path([pdfs], out / "extracted", True, {},
                          cache / "extract" if cache else None, scheduler)
    errors += segment.run([out / "extracted"], out / "segments", {}, True,
                          segment.read_manifest(SAMPLE), cache / "segment" if cache else None,
                          scheduler)
    return errors


def _entries(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_adding_a_report_computes_only_that_report(tmp_path: Path) -> None:
    pdfs = _corpus(tmp_path / "pdfs", ["f01", "f02", "f03"])
    cache, out = tmp_path / "cache", tmp_path / "out"
    _run(pdfs, out, cache)
    before = {stage: _entries(cache / stage) for stage in ("extract", "segment")}
    assert all(len(entries) == 3 for entries in before.values())

    _corpus(pdfs, ["f04"])
    _run(pdfs, out, cache)
    for stage, entries in before.items():
        after = _entries(cache / stage)
        assert len(after) == 4
        assert {k: after[k] for k in entries} == entries, f"{stage} recomputed an old report"
    reports = [json.loads(x)["report_id"] for x in (out / "segments" / "reports.jsonl").open()]
    assert reports == ["f01", "f02", "f03", "f04"]

    (pdfs / "f01.pdf").unlink()
    _run(pdfs, out, cache)
    assert not (out / "extracted" / "f01.json").exists()
    reports = [json.loads(x)["report_id"] for x in (out / "segments" / "reports.jsonl").open()]
    assert reports == ["f02", "f03", "f04"]
    assert len(_entries(cache / "extract")) == len(_entries(cache / "segment")) == 3


def test_cached_and_fresh_outputs_are_byte_identical(tmp_path: Path) -> None:
    pdfs = _corpus(tmp_path / "pdfs", ["f02", "s-midlothian"])
    _run(pdfs, tmp_path / "a")
    _run(pdfs, tmp_path / "b", tmp_path / "cache")
    _run(pdfs, tmp_path / "c", tmp_path / "cache")  # every report from the cache
    first = _files(tmp_path / "a")
    assert first == _files(tmp_path / "b") == _files(tmp_path / "c")


def test_two_copies_of_a_report_are_analysed_once(tmp_path: Path) -> None:
    pdfs = _corpus(tmp_path / "pdfs", ["f01", "f02"])
    shutil.copy(pdfs / "f01.pdf", pdfs / "f01-again.pdf")  # same bytes
    # Same report saved again: other bytes, same partnership and month.
    (pdfs / "f02-resaved.pdf").write_bytes((pdfs / "f02.pdf").read_bytes() + b"%resaved\n")
    out = tmp_path / "out"
    _run(pdfs, out)
    reports = [json.loads(x)["report_id"] for x in (out / "segments" / "reports.jsonl").open()]
    assert reports == ["f01", "f02"]
    listed = {Path(row["file"]).name: row
              for row in json.loads((out / "segments" / "errors.json").read_text())}
    assert set(listed) == {"f01-again.pdf", "f02-resaved.pdf"}
    assert listed["f01-again.pdf"]["duplicate_of"] == "f01"
    assert listed["f01-again.pdf"]["stage"] == "extract"
    assert listed["f02-resaved.pdf"]["duplicate_of"] == "f02"
    assert "same partnership Strathkeir and publication month 2018-10" in \
        listed["f02-resaved.pdf"]["reason"]


def test_a_dask_cluster_gives_the_same_outputs(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    pdfs = _corpus(tmp_path / "pdfs", ["f03", "f05"])
    (pdfs / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    local = _run(pdfs, tmp_path / "local")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        remote = _run(pdfs, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert [str(e) for e in remote] == [str(e) for e in local]
    assert _files(tmp_path / "local") == _files(tmp_path / "dask")
