"""ExampleGen's input -> trainpipe's landing folder and days: `input_base` and the split patterns of `input_config`
(with TFX's `{SPAN}`, `{VERSION}`, `{YYYY}`/`{MM}`/`{DD}` specs) are matched against the files; each file becomes
`<name>_<day>.csv` in the landing folder (a symbolic link, the file is not copied). A date spec gives the day; spans
become consecutive days ending at the day of the newest file; a folder without spans is one day, that day
(yesterday at the latest: the last daily partition)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

SPECS = {
    "{SPAN}": r"(?P<span>\d+)",
    "{VERSION}": r"(?P<version>\d+)",
    "{YYYY}": r"(?P<year>\d{4})",
    "{MM}": r"(?P<month>\d{2})",
    "{DD}": r"(?P<day>\d{2})",
}


class InputError(ValueError):
    pass


@dataclass
class InputFile:
    path: Path
    split: str
    day: str = ""
    span: int | None = None
    version: int = 0


@dataclass
class Landing:
    days: list[str]
    files: dict[str, Path] = field(default_factory=dict)  # landing file name -> source file
    notes: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


def pattern_regex(pattern: str) -> re.Pattern:
    text = re.escape(pattern)
    for spec, group in SPECS.items():
        text = text.replace(re.escape(spec), group, 1)
    text = text.replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return re.compile(f"^{text}$")


def find_inputs(input_base: Path, splits: list[tuple[str, str]], where: str) -> list[InputFile]:
    if not input_base.is_dir():
        raise InputError(f"{where}: input_base {input_base} is not a folder")
    found: list[InputFile] = []
    candidates = sorted(p for p in input_base.rglob("*") if p.is_file() and not p.name.startswith("."))
    for split, pattern in splits:
        regex = pattern_regex(pattern)
        for path in candidates:
            m = regex.match(path.relative_to(input_base).as_posix())
            if not m:
                continue
            groups = m.groupdict()
            item = InputFile(path, split, version=int(groups.get("version") or 0))
            if groups.get("year"):
                try:
                    item.day = dt.date(int(groups["year"]), int(groups["month"]), int(groups["day"])).isoformat()
                except (TypeError, ValueError) as e:
                    raise InputError(f"{where}: {path} does not name a date through {pattern!r}: {e}") from None
            if groups.get("span") is not None:
                item.span = int(groups["span"])
            found.append(item)
        if not any(f.split == split for f in found):
            raise InputError(f"{where}: no file under {input_base} matches the pattern {pattern!r} of split {split!r}")
    return found


def _latest_versions(files: list[InputFile]) -> list[InputFile]:
    latest: dict = {}
    for f in files:
        key = (f.split, f.day, f.span)
        latest[key] = max(latest.get(key, 0), f.version)
    return [f for f in files if f.version == latest[(f.split, f.day, f.span)]]


def land(files: list[InputFile], where: str) -> Landing:
    """Give every file its day and its landing name."""
    notes = []
    files = _latest_versions(files)
    newest = max(dt.datetime.fromtimestamp(f.path.stat().st_mtime, dt.timezone.utc).date() for f in files)
    newest = min(newest, dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))  # daily partitions end there
    spans = sorted({f.span for f in files if f.span is not None})
    if spans:
        for f in files:
            if f.span is not None and not f.day:
                f.day = (newest - dt.timedelta(days=spans[-1] - f.span)).isoformat()
        notes.append("spans -> days: " + ", ".join(
            f"{s} -> {(newest - dt.timedelta(days=spans[-1] - s)).isoformat()}" for s in spans))
    undated = [f for f in files if not f.day]
    for f in undated:
        f.day = newest.isoformat()
    if undated and not spans and len({f.day for f in files}) == 1:
        notes.append(f"no span or date in the pattern: the folder is one day, {newest.isoformat()} (its newest file)")
    landing = Landing(days=sorted({f.day for f in files}), notes=notes)
    for f in files:
        stem = re.sub(r"[^A-Za-z0-9]+", "-", f.path.stem).strip("-") or "data"
        stem = re.sub(r"-?\d{4}-\d{2}-\d{2}$", "", stem) or "data"
        name, n = f"{stem}_{f.day}.csv", 1
        while name in landing.files:
            n += 1
            name = f"{stem}-{n}_{f.day}.csv"
        landing.files[name] = f.path
    first = files[0].path
    try:
        with first.open(encoding="utf-8", errors="replace") as handle:
            landing.header = [c.strip().strip('"') for c in handle.readline().strip().split(",")]
    except OSError as e:
        raise InputError(f"{where}: cannot read {first}: {e}") from None
    return landing


def link_landing(landing: Landing, folder: Path) -> None:
    """Make the landing folder hold exactly the pipeline's files (links to them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        if old.is_symlink() and old.name not in landing.files:
            old.unlink()
    for name, source in landing.files.items():
        link = folder / name
        if link.is_symlink() and link.resolve() == source.resolve():
            continue
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(source.resolve())
