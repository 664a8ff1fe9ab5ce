"""Reading a YAML configuration file with errors that name the file, and noticing that the
files a configuration is made of changed (for hot reload)."""

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path) -> Any:
    """The file's content; a ValueError starting with the path when it cannot be read or
    parsed."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error


Stamp = tuple[tuple[int, int] | None, ...]


def file_stamps(paths: tuple[Path, ...]) -> Stamp:
    """Modification time and size of each file (None for one that cannot be read): a change to
    any of them is a change to the configuration they make up."""
    stamps: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            stamps.append(None)
            continue
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)
