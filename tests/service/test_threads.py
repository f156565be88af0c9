"""Child environments: no inherited thread setting reaches a child; each gets the threads meant for it."""

import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from service.threads import (
    COUNT_VARIABLES,
    SOURCE_ROOT,
    child_environment,
    cpu_threads,
    is_thread_variable,
    python_child_environment,
    torch_threads,
)

INHERITED = {
    "PATH": "/usr/bin",
    "OMP_THREAD_LIMIT": "1",
    "OMP_NUM_THREADS": "7",
    "MKL_NUM_THREADS": "7",
    "KMP_AFFINITY": "compact",
    "OPENBLAS_CORETYPE": "Haswell",
}


def test_a_child_gets_its_own_thread_counts_and_no_inherited_limit():
    env = child_environment(2, {"OMP_WAIT_POLICY": "PASSIVE"}, base=INHERITED)
    assert "OMP_THREAD_LIMIT" not in env and "KMP_AFFINITY" not in env
    assert {name: env[name] for name in COUNT_VARIABLES} == dict.fromkeys(COUNT_VARIABLES, "2")
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["PATH"] == "/usr/bin" and env["OPENBLAS_CORETYPE"] == "Haswell"  # not a thread count


@given(st.dictionaries(st.from_regex(r"[A-Z_]{1,20}", fullmatch=True), st.text(max_size=5), max_size=20))
def test_only_thread_variables_are_dropped_and_the_base_is_not_changed(base: dict[str, str]):
    before = dict(base)
    env = child_environment(3, base=base)
    assert base == before
    for name, value in base.items():
        if not is_thread_variable(name):
            assert env[name] == value
        elif name not in COUNT_VARIABLES:
            assert name not in env


def test_a_python_child_runs_this_code_and_the_parent_keeps_its_environment(monkeypatch):
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = python_child_environment(2)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(SOURCE_ROOT), "/elsewhere"]
    code = (
        "import os, service; e = os.environ.get;"
        "print(e('OMP_THREAD_LIMIT'), e('OMP_NUM_THREADS'), service.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, check=True
    )
    limit, threads, location = out.stdout.split()
    assert (limit, threads) == ("None", "2") and location.startswith(str(SOURCE_ROOT))
    assert os.environ["OMP_THREAD_LIMIT"] == "1"


def test_torch_threads_never_exceed_a_thread_limit_in_force():
    assert torch_threads(4, {}) == 4
    assert torch_threads(4, {"OMP_THREAD_LIMIT": "1"}) == 1
    assert torch_threads(2, {"OMP_THREAD_LIMIT": "8"}) == 2
    assert torch_threads(2, {"OMP_THREAD_LIMIT": "nonsense"}) == 2
    assert torch_threads(0, {}) == cpu_threads(0) == (os.cpu_count() or 1)
