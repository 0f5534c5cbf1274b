"""The comparison report in a real browser: it renders offline, without errors, with its sections.

Headless Chromium (Debian package ``chromium``) loads a copy of the page with a
small probe script added at the top of ``<head>``; the probe records every
error event (script errors and failed resource loads, captured) and, on load,
writes them and the rendered size of each chart into attributes that
``--dump-dom`` prints. Console messages go to stderr via ``--enable-logging``.
The page itself has no script; the probe exists only in the test copy.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from html import unescape
from pathlib import Path

import pytest

from pipeline.report import render as report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless browser check needs /usr/bin/chromium (apt-get install -y chromium)",
)

PROBE = """<script>
window.__errors = [];
addEventListener('error', e => __errors.push(String(e.message ||
  (e.target && (e.target.src || e.target.href)) || 'error')), true);
addEventListener('load', () => {
  const root = document.documentElement;
  root.setAttribute('data-errors', JSON.stringify(__errors));
  root.setAttribute('data-svg', JSON.stringify([...document.querySelectorAll('svg')]
    .map(s => Math.round(s.getBoundingClientRect().width))));
  root.setAttribute('data-height', String(document.body.scrollHeight));
  root.setAttribute('data-sections', JSON.stringify([...document.querySelectorAll('section')]
    .filter(s => s.getBoundingClientRect().height > 0).map(s => s.id)));
});
</script>"""


def _load_builder():
    """build_inputs() from test_report.py, loaded by path (works in any pytest import mode)."""
    spec = importlib.util.spec_from_file_location(
        "_report_inputs", Path(__file__).with_name("test_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_renders_in_headless_chromium(tmp_path):
    inputs = _load_builder()
    bench, th, segments = inputs.build_inputs()
    out = tmp_path / "out"
    report.render(bench, th, segments, out)
    html = (out / "comparison.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1))

    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1280,900", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    root = re.search(r"<html[^>]*>", dom).group(0)

    def attr(name: str):
        match = re.search(rf'{name}="([^"]*)"', root)
        assert match, f"probe did not run: {name} missing"
        return json.loads(unescape(match.group(1)))

    assert attr("data-errors") == []
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    widths = attr("data-svg")
    assert len(widths) >= len(bench["qis"]) + 2
    assert all(w > 300 for w in widths)  # every chart laid out at a readable width
    assert attr("data-height") > 3000
    assert attr("data-sections") == inputs.SECTION_IDS
    assert "Realburgh compared with 4 other partnerships" in unescape(dom)
