from pathlib import Path

from service.cli.docs import TABLE_END, TABLE_START, settings_table, with_settings_table
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_readme_configuration_table_is_generated_from_settings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert with_settings_table(readme) == readme, "README settings table is stale: run `make docs`"


def test_every_setting_is_documented():
    table = settings_table()
    for name, field in Settings.model_fields.items():
        assert f"`DOCEXTRACT_{name.upper()}`" in table
        assert field.description, f"setting {name} has no description"


def test_markers_are_replaced_in_place():
    text = f"intro\n{TABLE_START}\nSTALE-TABLE\n{TABLE_END}\noutro\n"
    updated = with_settings_table(text)
    assert (
        updated.startswith("intro\n")
        and updated.endswith(f"{TABLE_END}\noutro\n")
        and "STALE-TABLE" not in updated
    )
