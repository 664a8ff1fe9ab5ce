"""Reading a YAML configuration file with errors that name the file."""

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
