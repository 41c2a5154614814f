from __future__ import annotations

from pathlib import Path

from fnbox.server.settings_doc import render

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_matches_the_settings_models() -> None:
    assert REFERENCE.read_text() == render(), (
        "docs/configuration.md is stale: run "
        "'.venv/bin/python -m fnbox.server.settings_doc docs/configuration.md'"
    )


def test_every_setting_is_documented() -> None:
    rows = [line for line in render().splitlines() if line.startswith("| `FNBOX_")]
    assert len(rows) > 50
    assert all(not line.endswith("|  |") for line in rows)
