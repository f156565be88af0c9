"""The install step is idempotent, and the README's two commands exist as documented."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_install_script_is_idempotent():
    """After `make install` (which the test command runs first), a second run changes nothing."""
    result = subprocess.run(
        ["bash", "scripts/install.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert "Debian packages present" in result.stdout
    assert "Python packages up to date" in result.stdout


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\s*\$ (.+)$", readme.split("## Set up", 1)[1].split("\n## ", 1)[0], re.M)
    assert commands == ["make serve", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec make test" in ci


def test_torch_is_pinned_exactly():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.findall(r'"torch\b[^"]*"', pyproject) == ['"torch==2.13.0"']
