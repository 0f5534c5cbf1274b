"""Shared fixtures: the read-only corpus in ../shared, extracted once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "corpus" / "pdf").is_dir():
        pytest.skip(f"the shared corpus is not at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def corpus_docs(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every PDF of ../shared/corpus/pdf through the extract stage: report_id -> document."""
    from pipeline.extract.stage import DEFAULTS, extract_pdf

    return {
        pdf.stem: extract_pdf(pdf, DEFAULTS)
        for pdf in sorted((shared_dir / "corpus" / "pdf").glob("*.pdf"))
    }
