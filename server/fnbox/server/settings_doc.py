"""Writes the settings reference (docs/configuration.md) from the Settings models.

``python -m fnbox.server.settings_doc`` prints it; a test checks the committed file matches,
so the reference can never drift from the code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from fnbox.server.settings import Settings
from pydantic import BaseModel
from pydantic.fields import FieldInfo

HEADER = """# Configuration reference

Generated from the settings models by `python -m fnbox.server.settings_doc`; do not edit.

Every setting is read from the environment (`FNBOX_` prefix, `__` between a section and its
field) or from a TOML file named by `FNBOX_CONFIG` (sections as tables); command-line flags
such as `--data-dir` win over both. Lists take JSON or, where noted, comma-separated values.
"""

# Defaults that depend on where fnbox is installed are shown as a description, not a path.
MACHINE_DEPENDENT = {"node_path", "worker_script"}


def _default(name: str, field: FieldInfo) -> str:
    if name in MACHINE_DEPENDENT:
        return "(installed copy)"
    value = field.get_default(call_default_factory=True)
    if value is None or value == "":
        return "(empty)"
    return f"`{value}`"


def _rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str]]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        yield f"`{prefix}{name.upper()}`", _default(name, field), description


def render() -> str:
    sections: list[str] = [HEADER]
    top = list(_rows(Settings, "FNBOX_"))
    groups: list[tuple[str, list[tuple[str, str, str]]]] = [("General", top)]
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            groups.append((name, list(_rows(annotation, f"FNBOX_{name.upper()}__"))))
    for title, rows in groups:
        sections.append(f"\n## {title}\n\n| setting | default | meaning |\n| --- | --- | --- |")
        sections.extend(
            f"| {setting} | {default} | {meaning} |" for setting, default, meaning in rows
        )
    return "\n".join(sections) + "\n"


def main() -> int:
    text = render()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
