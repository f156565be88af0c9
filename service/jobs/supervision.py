"""Watching a training run's child process from its worker: cancellation, stalls, shutdown, and the
error a failed run reports (the end of the child's log, without the server's paths).

`supervise` polls the run's row while the child lives. The child moves its `progress` (phase, pages
prepared, step); a `Watchdog` says when that has not moved for `train_stall_s` seconds. Small pure
functions do the reading; nothing here imports torch.
"""

import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from service.store import Store
from service.threads import SOURCE_ROOT

POLL_S = 0.5
LOG_TAIL_LINES = 20
LOG_TAIL_CHARS = 2000
MOVING_FIELDS = ("phase", "epoch", "step", "prepared")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.>])/(?:[^\s/:'\"(),]+/)+([^\s/:'\"(),]+)")

Outcome = Literal["exited", "shutdown", "cancelled", "lost", "stalled"]


def progress_signature(progress: Mapping[str, Any]) -> tuple[Any, ...]:
    """What moves while a run works: its phase, epoch, step and pages prepared (not its timestamp)."""
    return tuple(progress.get(name) for name in MOVING_FIELDS)


@dataclass
class Watchdog:
    """Says when a run's progress has stood still for longer than `stall_s` seconds."""

    stall_s: float
    signature: tuple[Any, ...] | None = None
    moved_at: float = field(default_factory=time.monotonic)

    def stalled(self, progress: Mapping[str, Any], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        signature = progress_signature(progress)
        if signature != self.signature:
            self.signature, self.moved_at = signature, now
            return False
        return now - self.moved_at > self.stall_s


def stop_child(child: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s` seconds."""
    child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def supervise(
    child: subprocess.Popen[bytes],
    store: Store,
    run_id: str,
    claim: str,
    stall_s: float,
    stopping: threading.Event,
) -> Outcome:
    """Wait for the child to exit; stop it first when the worker shuts down, the run is cancelled or
    handed to another worker, or its progress stalls."""
    watchdog = Watchdog(stall_s)
    while child.poll() is None:
        if stopping.wait(POLL_S):
            stop_child(child)
            return "shutdown"
        run = store.get_run(run_id) or {}
        outcome = _interruption(run, claim, watchdog)
        if outcome is not None:
            child.kill()  # a cancelled or stalled run has nothing to save
            child.wait()
            return outcome
    return "exited"


def _interruption(run: Mapping[str, Any], claim: str, watchdog: Watchdog) -> Outcome | None:
    status = run.get("status")
    if status == "cancelled":
        return "cancelled"
    if status in ("succeeded", "failed"):  # settled by the child, which is about to exit (or stalls)
        return "stalled" if watchdog.stalled(run.get("progress") or {}) else None
    if status != "running" or run.get("claim") != claim:
        return "lost"
    return "stalled" if watchdog.stalled(run.get("progress") or {}) else None


def stall_message(progress: Mapping[str, Any], stall_s: float) -> str:
    phase = progress.get("phase", "preparing")
    step, total = progress.get("step", 0), progress.get("total_steps", 0)
    where = f"epoch {progress.get('epoch', 0)}, step {step} of {total}"
    return (
        f"the training run stalled: no progress for {stall_s:g} s in phase {phase} ({where}); its process "
        "was stopped (DOCEXTRACT_TRAIN_STALL_S sets the limit)"
    )


def redact_paths(text: str, roots: Mapping[str, str]) -> str:
    """`text` with each folder of `roots` replaced by its label, and any other absolute path by its last
    part: an error shown to API clients does not reveal the server's file system."""
    for root, label in sorted(roots.items(), key=lambda item: -len(item[0])):
        text = text.replace(root.rstrip("/") + "/", label + "/").replace(root, label)
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), text)


def server_roots(data_dir: Path) -> dict[str, str]:
    return {
        str(data_dir.resolve()): "<data>",
        str(SOURCE_ROOT): "<app>",
        sys.prefix: "<python>",
        sys.base_prefix: "<python>",
    }


def log_tail(path: Path, data_dir: Path) -> str:
    """The last lines of a child's log, redacted; empty when there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()][-LOG_TAIL_LINES:]
    return redact_paths("\n".join(lines), server_roots(data_dir))[-LOG_TAIL_CHARS:]


def failure_report(summary: str, log: Path, data_dir: Path) -> str:
    """A failed run's `error`: what went wrong, then the end of its log."""
    tail = log_tail(log, data_dir)
    return f"{summary}\n--- last lines of the training log ---\n{tail}" if tail else summary
