"""Helpers for tests of the YAML loaders (rulebook, policy)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


def write_yaml(tmp_path: Path, data: Any, name: str) -> Path:
    """Write a mapping as YAML, or a string as it is (to test broken YAML)."""
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def refusal(load: Callable[[Path], object], error: type[Exception], path: Path) -> str:
    """The loader's error message, which must start by naming the file."""
    with pytest.raises(error) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message
