"""Running an .ipynb as Jupyter would, without Jupyter: the code cells in order in one namespace, with the notebook's
folder as the working directory. `%%writefile [-a] FILE` cells write their file; `!` shell lines and other magics
are skipped with one note each; `display(x)` prints."""

from __future__ import annotations

import json
import os
from pathlib import Path


class NotebookError(ValueError):
    pass


def cells(path: Path) -> list[str]:
    try:
        notebook = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise NotebookError(f"{path}: not a readable notebook: {e}") from None
    found = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            found.append("".join(source) if isinstance(source, list) else str(source))
    return found


def _strip_magics(code: str, number: int, path: Path) -> str:
    kept = []
    for i, line in enumerate(code.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(("!", "%")):
            print(f"note: {path.name} cell {number} line {i}: skipped {stripped.split()[0]!r} ({stripped[:60]})")
            kept.append(line[: len(line) - len(line.lstrip())] + "pass")
        else:
            kept.append(line)
    return "\n".join(kept)


def run_notebook(path: Path) -> None:
    path = Path(path).resolve()
    namespace = {"__name__": "__main__", "__file__": str(path), "display": print}
    previous = os.getcwd()
    os.chdir(path.parent)
    try:
        for number, code in enumerate(cells(path), 1):
            first, _, body = code.partition("\n")
            if first.startswith("%%writefile"):
                words = first.split()[1:]
                append = "-a" in words or "--append" in words
                target = Path(next(w for w in words if not w.startswith("-")))
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("a" if append else "w") as handle:
                    handle.write(body if body.endswith("\n") else body + "\n")
                print(f"{path.name} cell {number}: wrote {target}")
                continue
            if first.startswith("%%"):
                print(f"note: {path.name} cell {number}: skipped the cell magic {first.split()[0]!r}")
                continue
            source = _strip_magics(code, number, path)
            exec(compile(source, f"{path}#cell{number}", "exec"), namespace)  # noqa: S102 (the user's notebook)
    finally:
        os.chdir(previous)
