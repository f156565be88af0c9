"""Watching a training child: the stall watchdog, the error a failed run reports (no server paths)."""

import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from service.jobs.supervision import (
    LOG_TAIL_LINES,
    Watchdog,
    failure_report,
    log_tail,
    progress_signature,
    redact_paths,
    stall_message,
)
from service.threads import SOURCE_ROOT


def test_the_watchdog_fires_only_after_stall_s_without_movement():
    watchdog = Watchdog(10.0)
    fine_tuning = {"phase": "fine-tuning", "epoch": 1, "step": 3, "updated": "a"}
    assert not watchdog.stalled(fine_tuning, now=0.0)
    assert not watchdog.stalled(fine_tuning | {"updated": "b"}, now=9.0)  # a timestamp alone is no movement
    assert watchdog.stalled(fine_tuning, now=10.5)
    assert not watchdog.stalled(fine_tuning | {"step": 4}, now=11.0)  # a step moves it
    assert not watchdog.stalled(fine_tuning | {"step": 4}, now=20.0)
    assert not watchdog.stalled({"phase": "exporting", "epoch": 1, "step": 4}, now=21.0)  # so does a phase
    assert watchdog.stalled({"phase": "exporting", "epoch": 1, "step": 4}, now=31.5)  # a long export


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30), st.floats(0.5, 5))
def test_the_watchdog_measures_from_the_last_change(steps: list[int], stall_s: float):
    watchdog, now, moved_at, last = Watchdog(stall_s), 0.0, 0.0, None
    for step in steps:
        now += 1.0
        if step != last:
            moved_at, last = now, step
        assert watchdog.stalled({"step": step}, now=now) == (now - moved_at > stall_s)


def test_prepared_pages_count_as_movement():
    assert progress_signature({"phase": "fine-tuning", "prepared": 1}) != progress_signature(
        {"phase": "fine-tuning", "prepared": 2}
    )


def test_paths_are_redacted():
    roots = {"/srv/docextract/data": "<data>", "/opt/app": "<app>"}
    text = (
        'File "/opt/app/model/train.py", line 3\n'
        "FileNotFoundError: /srv/docextract/data/datasets/run_1/forms/a.png and /home/me/secret/x.json"
    )
    redacted = redact_paths(text, roots)
    assert redacted == (
        'File "<app>/model/train.py", line 3\nFileNotFoundError: <data>/datasets/run_1/forms/a.png and x.json'
    )
    assert redact_paths("ratio 3/4 and a/b", roots) == "ratio 3/4 and a/b"  # not absolute paths


def test_a_failure_report_ends_with_the_logs_last_lines_without_server_paths(tmp_path: Path):
    log = tmp_path / "child.log"
    lines = [f"line {n}" for n in range(40)]
    lines += [f'  File "{SOURCE_ROOT}/model/train.py", line 9', f'  File "{sys.prefix}/lib/x.py"']
    lines += [f"ValueError: bad file {tmp_path}/data/datasets/run_1/a.json"]
    log.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    report = failure_report("ValueError: bad file", log, tmp_path / "data")
    summary, tail = report.split("\n--- last lines of the training log ---\n")
    assert summary == "ValueError: bad file"
    assert tail.splitlines()[-1] == "ValueError: bad file <data>/datasets/run_1/a.json"
    assert (
        len(tail.splitlines()) == LOG_TAIL_LINES
        and str(tmp_path) not in tail
        and str(SOURCE_ROOT) not in tail
    )
    assert '"<app>/model/train.py"' in tail and '"<python>/lib/x.py"' in tail
    assert log_tail(tmp_path / "missing.log", tmp_path) == ""
    assert failure_report("exited", tmp_path / "missing.log", tmp_path) == "exited"


def test_a_stall_message_says_where():
    message = stall_message({"phase": "fine-tuning", "epoch": 2, "step": 7, "total_steps": 20}, 900)
    assert "no progress for 900 s in phase fine-tuning (epoch 2, step 7 of 20)" in message
    assert "DOCEXTRACT_TRAIN_STALL_S" in message
