"""The local engine: each task in a process of its own, stopped at its limits, alone."""

from __future__ import annotations

import os
import time
import warnings

from pipeline.core.engine import Limits, run_tasks


def _run(fn, args_list, **limits):
    tasks = [(f"task{i}.pdf", args) for i, args in enumerate(args_list)]
    return sorted(run_tasks(fn, tasks, Limits(**limits)), key=lambda o: o.index)


def test_values_come_back_and_failures_name_their_file():
    ok, bad = _run(int, [("12",), ("x",)], workers=2)
    assert ok.value == 12 and ok.error is None
    assert str(bad.error).startswith("task1.pdf: failed: ValueError: invalid literal")


def test_a_task_over_its_time_limit_is_stopped_and_the_rest_go_on():
    start = time.monotonic()
    slow, fast = _run(time.sleep, [(30,), (0,)], workers=2, timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert str(slow.error) == "task0.pdf: stopped after the time limit of 1 s (extract.timeout_s)"
    assert fast.error is None


def test_a_task_over_its_memory_limit_fails_alone():
    big, small = _run(bytearray, [(400 << 20,), (10,)], workers=1, max_memory_mb=100)
    assert str(big.error) == ("task0.pdf: needed more than the memory limit of 100 MB "
                              "(extract.max_memory_mb)")
    assert small.value == bytearray(10)


def test_a_crashed_worker_is_one_error():
    crashed, fine = _run(os.abort, [(), ()], workers=1)[0], _run(len, [("ab",)])[0]
    assert str(crashed.error) == "task0.pdf: worker crashed (SIGABRT)"
    assert fine.value == 2


def test_library_warnings_come_back_with_their_task():
    (outcome,) = _run(warnings.warn, [("odd glyph",)])
    assert outcome.error is None
    assert outcome.notes == ["UserWarning: odd glyph"]


def test_worker_count_defaults_to_the_cores():
    assert Limits().worker_count(100) == (os.cpu_count() or 1)
    assert Limits(workers=3).worker_count(2) == 2
