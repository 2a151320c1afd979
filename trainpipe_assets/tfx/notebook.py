"""Running an .ipynb as Jupyter would, without Jupyter: the code cells in order in one namespace, with the notebook's
folder as the working directory. `%%writefile [-a] FILE` cells write their file (`{expression}` and `$name` in FILE
expanded as IPython expands them, e.g. `%%writefile {_module_file}`); `%load_ext trainpipe_assets.tfx` is honoured
(the stand-ins are already in); `!` shell lines and other magics are skipped with one note each (`x = !cmd` gives
an empty list); the value of a cell's last expression is printed as Jupyter shows it; `display(x)` prints."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

OUR_EXTENSION = "trainpipe_assets.tfx"


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


def expand(text: str, namespace: dict) -> str:
    """IPython's expansion of a magic's arguments: `{expression}` evaluated in the notebook's namespace, `$name`
    replaced by the variable's value ($$ is a $)."""
    text = re.sub(r"\{([^{}]+)\}", lambda m: str(eval(m.group(1), namespace)), text)  # noqa: S307 (the user's cell)
    text = re.sub(r"(?<!\$)\$([A-Za-z_]\w*)", lambda m: str(namespace.get(m.group(1), m.group(0))), text)
    return text.replace("$$", "$")


def _line_magic(stripped: str, where: str) -> None:
    """A `%` or `!` line: `%load_ext trainpipe_assets.tfx` loads the extension (as Jupyter would); others are noted."""
    words = stripped.split()
    if words[:2] == ["%load_ext", OUR_EXTENSION]:
        from trainpipe_assets.tfx import load_ipython_extension

        load_ipython_extension(None)
        return
    print(f"note: {where}: skipped {words[0]!r} ({stripped[:60]})")


ASSIGNED = re.compile(r"^(\s*[A-Za-z_][\w, ]*=\s*)([!%].*)$")  # files = !ls, out = %timeit -o f()


def _strip_magics(code: str, number: int, path: Path) -> str:
    kept = []
    for i, line in enumerate(code.splitlines(), 1):
        stripped = line.strip()
        assigned = ASSIGNED.match(line)
        if stripped.startswith(("!", "%")):
            _line_magic(stripped, f"{path.name} cell {number} line {i}")
            kept.append(line[: len(line) - len(line.lstrip())] + "pass")
        elif assigned:
            _line_magic(assigned.group(2).strip(), f"{path.name} cell {number} line {i}")
            kept.append(assigned.group(1) + "[]  # " + assigned.group(2))  # IPython's SList, empty
        else:
            kept.append(line)
    return "\n".join(kept)


def _write_file(first: str, body: str, namespace: dict, number: int, path: Path) -> None:
    words = expand(first, namespace).split()[1:]
    append = "-a" in words or "--append" in words
    names = [w for w in words if not w.startswith("-")]
    if not names:
        raise NotebookError(f"{path.name} cell {number}: %%writefile names no file")
    target = Path(names[0].strip("'\""))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a" if append else "w") as handle:
        handle.write(body if body.endswith("\n") else body + "\n")
    print(f"{path.name} cell {number}: {'appended to' if append else 'wrote'} {target}")


def _run_cell(source: str, filename: str, namespace: dict) -> None:
    """exec the cell; a last expression statement is evaluated and its value printed unless None (Jupyter's Out)."""
    tree = ast.parse(source, filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 (the user's notebook)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)  # noqa: S307
        if value is not None:
            print(repr(value))


def run_notebook(path: Path) -> None:
    path = Path(path).resolve()
    namespace = {"__name__": "__main__", "__file__": str(path), "display": print}
    previous = os.getcwd()
    os.chdir(path.parent)
    try:
        for number, code in enumerate(cells(path), 1):
            first, _, body = code.lstrip("\n").partition("\n")
            if first.startswith("%%writefile"):
                _write_file(first, body, namespace, number, path)
                continue
            if first.startswith("%%"):
                print(f"note: {path.name} cell {number}: skipped the cell magic {first.split()[0]!r}")
                continue
            _run_cell(_strip_magics(code, number, path), f"{path}#cell{number}", namespace)
    finally:
        os.chdir(previous)
