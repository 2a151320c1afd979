"""`--model-config-file`: TF Serving's ModelServerConfig in protobuf text format, read into one ModelConfig per model.

    model_config_list {
      config {
        name: "trips_model"
        base_path: "/srv/serving/trips_model"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }    # or all {}, or specific { versions: 1 versions: 3 }
        version_labels { key: "stable" value: 1 }
      }
      config { ... }
    }

What is wrong in a file is a ValueError naming the file and the line (a syntax error or unknown field) or the model
and field (a base_path that is not a folder, a name used twice, an unsupported platform). A relative base_path is
taken from the current directory, as TF Serving takes it. Without model_version_policy a model serves its latest
version (TF Serving's default), as the one-model shortcut does (--model-name/--model-base-path, whose
--model-version-policy takes the same policies as one flag: parse_version_policy)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: which of the versions on disk a model loads."""

    kind: str = "all"  # "latest", "all" or "specific"
    num_versions: int = 1  # latest
    versions: tuple[int, ...] = ()  # specific

    def select(self, on_disk: Iterable[int]) -> set[int]:
        on_disk = set(on_disk)
        if self.kind == "latest":
            return set(sorted(on_disk)[-self.num_versions :])
        if self.kind == "specific":
            return on_disk & set(self.versions)
        return on_disk

    def __str__(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        return f"specific {list(self.versions)}" if self.kind == "specific" else "all"


ALL_VERSIONS = VersionPolicy("all")
LATEST_VERSION = VersionPolicy("latest", 1)  # TF Serving's default


def parse_version_policy(text: str) -> VersionPolicy:
    """--model-version-policy: `latest:N`, `all` or `specific:1,3` (TF Serving's policies, as one flag); a
    ValueError says what is accepted."""
    from trainpipe_assets.core.serving_layout import parse_version

    kind, _, rest = text.strip().partition(":")
    usage = f"--model-version-policy {text!r}: expected latest:N (N at least 1), all, or specific:V1,V2,..."
    if kind == "all" and not rest:
        return ALL_VERSIONS
    if kind == "latest":
        n = parse_version(rest or "1")
        if not n:
            raise ValueError(usage)
        return VersionPolicy("latest", n)
    if kind == "specific":
        versions = [parse_version(v.strip()) for v in rest.split(",")]
        if not rest or None in versions:
            raise ValueError(usage)
        return VersionPolicy("specific", versions=tuple(sorted(set(versions))))
    raise ValueError(usage)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: Path
    policy: VersionPolicy = LATEST_VERSION
    labels: dict[str, int] = field(default_factory=dict, hash=False)


def read_config_text(path: Path) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None


def read_model_config(path: Path) -> list[ModelConfig]:
    """The models a config file lists; a ValueError says what is wrong and where."""
    return parse_model_config(read_config_text(path), path)


def parse_model_config(text: str, path: Path) -> list[ModelConfig]:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        # str(e) is "3:5 : Message type ... has no field named ..."; say it as path:line:column: message
        message = re.sub(r"^\d+:\d+ : ", "", str(e))
        where = f"{path}:{e.GetLine()}:{e.GetColumn()}" if e.GetLine() else str(path)
        raise ValueError(f"{where}: {message} (TF Serving's ModelServerConfig text format)") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise ValueError(f"{path}: custom_model_config is not supported; list the models in model_config_list")
    if not config.model_config_list.config:
        raise ValueError(f"{path}: no model: expected model_config_list {{ config {{ name: ... base_path: ... }} }}")
    models, seen = [], set()
    for i, entry in enumerate(config.model_config_list.config, 1):
        where = f"{path}: model {entry.name!r}" if entry.name else f"{path}: config #{i} of model_config_list"
        if not entry.name:
            raise ValueError(f"{where}: name is required")
        if entry.name in seen:
            raise ValueError(f"{where}: name {entry.name!r} is given to two models")
        seen.add(entry.name)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", entry.name):
            raise ValueError(f"{where}: name must be letters, digits, '_', '.' or '-' (it is part of the URL)")
        if not entry.base_path or not Path(entry.base_path).is_dir():
            raise ValueError(f"{where}: base_path {entry.base_path!r} is not a folder")
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{where}: model_platform {entry.model_platform!r} is not supported (only 'tensorflow')")
        if entry.model_type:
            raise ValueError(f"{where}: model_type is deprecated in TF Serving and not supported; use model_platform")
        if entry.HasField("logging_config"):
            raise ValueError(f"{where}: logging_config is not supported; use --capture-dir to record requests")
        for label, version in entry.version_labels.items():
            if version < 0:
                raise ValueError(f"{where}: version_labels {label!r} names version {version}, not a version number")
        models.append(ModelConfig(entry.name, Path(entry.base_path), _policy(entry, where), dict(entry.version_labels)))
    return models


def _policy(entry, where: str) -> VersionPolicy:
    policy = entry.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind is None:
        return LATEST_VERSION
    if kind == "latest":
        if policy.latest.num_versions < 0:
            raise ValueError(f"{where}: model_version_policy latest num_versions must be at least 1")
        return VersionPolicy("latest", policy.latest.num_versions or 1)  # TF Serving: 0 (unset) means 1
    if kind == "specific":
        if not policy.specific.versions:
            raise ValueError(f"{where}: model_version_policy specific lists no versions")
        return VersionPolicy("specific", versions=tuple(sorted(set(policy.specific.versions))))
    return ALL_VERSIONS
