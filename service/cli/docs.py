"""Generated documentation: the README's configuration table comes from `Settings` itself, so the two
cannot drift apart (a test compares them; `make docs` rewrites the README)."""

import sys
from pathlib import Path

from service.settings import Settings

TABLE_START, TABLE_END = "<!-- settings:start -->", "<!-- settings:end -->"


def _default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value)) or "empty"
    return str(value)


def settings_table() -> str:
    """Markdown table of every setting: environment variable, default, meaning."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = _default(field.get_default(call_default_factory=True))
        rows.append(f"| `DOCEXTRACT_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(rows)


def with_settings_table(readme: str) -> str:
    """The README text with the generated table between the settings markers."""
    head, rest = readme.split(TABLE_START, 1)
    tail = rest.split(TABLE_END, 1)[1]
    return f"{head}{TABLE_START}\n{settings_table()}\n{TABLE_END}{tail}"


def main(path: Path = Path("README.md")) -> None:
    path.write_text(with_settings_table(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("README.md"))
