"""A YAML file with its node tree kept, so validation errors can name the line they are on."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


@dataclass(frozen=True)
class YamlSource:
    path: Path
    raw: bytes
    content: dict[str, Any]
    node: yaml.Node

    @classmethod
    def read(cls, path: Path) -> "YamlSource":
        """Raise OSError, yaml.YAMLError, or TypeError when the top level is not a mapping."""
        raw = path.read_bytes()
        content = yaml.safe_load(raw)
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
        if not isinstance(content, dict) or node is None:
            raise TypeError("expected a mapping at the top level")
        return cls(path, raw, content, node)

    def describe(self, error: ValidationError) -> str:
        """One line per problem: ``file:line: path: problem``."""
        lines = []
        for problem in error.errors():
            loc = tuple(problem.get("loc", ()))
            where = dotted(loc) or "(top level)"
            message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
            lines.append(f"{self.path}:{locate(self.node, loc)}: {where}: {message}")
        return "\n".join(lines)


def dotted(loc: Sequence[Any]) -> str:
    """('agencies', 4, 'rules', 2, 'weight') -> 'agencies[4].rules[2].weight'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _is_field(part):
            text += f".{part}" if text else str(part)
    return text


def _is_field(part: Any) -> bool:
    # pydantic adds the member type of a union to a location ('str', 'list[str]'): not a field
    return isinstance(part, str) and "[" not in part and part not in {"str", "int", "float"}


def locate(node: yaml.Node, loc: Sequence[Any]) -> int:
    """The 1-based line of the deepest YAML node along a pydantic location."""
    key: yaml.Node | None = None
    for part in loc:
        if part == "[key]" and key is not None:
            node = key  # the mapping key itself is wrong: point at it, not at its value
            continue
        found = _child(node, part)
        if found is None:
            continue
        key, node = found
    return node.start_mark.line + 1


def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == part:
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return None, node.value[part]
    return None
