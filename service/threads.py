"""Thread counts, and the environment of every child process the service starts (tesseract, poppler, the
ONNX export, training runs).

A child gets this process's environment without any thread setting (OpenMP, MKL, OpenBLAS, ...), then the
thread settings meant for that child: nothing set in this process, by a library or by a user's shell for
another purpose, reaches a child by accident. (An inherited `OMP_THREAD_LIMIT=1` under torch's two intra-op
threads leaves oneDNN's AVX-512 convolution backward pass waiting forever for a thread that never comes.)
Nothing here changes this process's own environment.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

THREAD_VARIABLES = frozenset(
    {
        "OMP_NUM_THREADS",
        "OMP_THREAD_LIMIT",
        "OMP_DYNAMIC",
        "OMP_WAIT_POLICY",
        "OMP_PROC_BIND",
        "OMP_PLACES",
        "OMP_MAX_ACTIVE_LEVELS",
        "MKL_NUM_THREADS",
        "MKL_DYNAMIC",
        "OPENBLAS_NUM_THREADS",
        "GOTO_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    }
)
COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding the `service` and `model` packages
log = logging.getLogger("docextract.threads")


def is_thread_variable(name: str) -> bool:
    return name in THREAD_VARIABLES or name.startswith(("KMP_", "GOMP_"))


def child_environment(
    threads: int, extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a child process: `base` (default: this process's) without thread settings, every
    thread-count variable set to `threads`, then `extra`."""
    source = os.environ if base is None else base
    env = {name: value for name, value in source.items() if not is_thread_variable(name)}
    env.update({name: str(threads) for name in COUNT_VARIABLES})
    env.update(extra or {})
    return env


def python_child_environment(
    threads: int, extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`child_environment` for a `python -m service...` / `python -m model...` child: the folder holding
    this very code goes first on its path, so the child runs the same code as its parent."""
    env = child_environment(threads, extra, base)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SOURCE_ROOT) + (os.pathsep + path if path else "")
    return env


def cpu_threads(setting: int) -> int:
    """A thread-count setting (0 = one per CPU core) as a number of threads."""
    return setting or os.cpu_count() or 1


def torch_threads(setting: int, environ: Mapping[str, str] | None = None) -> int:
    """Intra-op threads for torch in this process: the setting (0 = one per core), never above an
    `OMP_THREAD_LIMIT` in force here (more threads than the limit deadlock oneDNN's parallel regions)."""
    wanted = cpu_threads(setting)
    limit = (os.environ if environ is None else environ).get("OMP_THREAD_LIMIT", "")
    if limit.isdigit() and 0 < int(limit) < wanted:
        log.warning("OMP_THREAD_LIMIT=%s is set: training uses %s thread(s), not %d", limit, limit, wanted)
        return int(limit)
    return wanted
