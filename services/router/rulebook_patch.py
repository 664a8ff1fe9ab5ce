"""Applying a reviewed suggestion file (``disposisi rules suggest --output``) to the rulebook
file: the edits are made in the YAML itself (comments and layout kept, ruamel.yaml), the result
must load as a rulebook before it replaces the file, and the router's hot reload takes it up.
Only entries a person left at ``apply: true`` are applied; applying twice changes nothing."""

import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from services.router.rulebook import RulebookError, load_rulebook
from services.router.suggest import Change, change_of


class SuggestionError(ValueError):
    """A suggestion file that cannot be applied; names the entry and the problem."""


@dataclass(frozen=True)
class Applied:
    applied: list[str]  # suggestion ids changed in the file
    unchanged: list[str]  # already in the rulebook
    skipped: list[str]  # apply: false
    version: str  # the rulebook's version afterwards


def read_suggestions(path: Path) -> list[tuple[str, bool, Change]]:
    """(id, apply, change) of every entry of a suggestion file."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SuggestionError(f"{path}: cannot read: {error}") from error
    entries = content.get("suggestions") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise SuggestionError(f"{path}: expected a mapping with a 'suggestions' list")
    out = []
    for number, entry in enumerate(entries):
        where = f"{path}: suggestions[{number}]"
        if not isinstance(entry, Mapping):
            raise SuggestionError(f"{where}: expected a mapping")
        try:
            out.append((str(entry.get("id", number)), entry.get("apply", True) is True, change_of(entry)))
        except KeyError as error:
            raise SuggestionError(f"{where}: missing field {error}") from error
        except (TypeError, ValueError) as error:
            raise SuggestionError(f"{where}: {error}") from error
    return out


def apply_suggestions(rulebook_path: Path, suggestions: Path) -> Applied:
    entries = read_suggestions(suggestions)
    editor = YAML()  # round trip: comments, order and flow style survive
    editor.preserve_quotes = True
    editor.width = 100
    document = editor.load(rulebook_path.read_text(encoding="utf-8"))
    applied, unchanged, skipped = [], [], []
    for ident, wanted, change in entries:
        if not wanted:
            skipped.append(ident)
        elif _edit(document, change, ident):
            applied.append(ident)
        else:
            unchanged.append(ident)
    if applied:
        buffer = io.StringIO()
        editor.dump(document, buffer)
        _replace_checked(rulebook_path, buffer.getvalue())
    return Applied(applied, unchanged, skipped, load_rulebook(rulebook_path).version)


def _edit(document: Any, change: Change, ident: str) -> bool:
    agency = next((a for a in document.get("agencies") or [] if a.get("code") == change.agency), None)
    if agency is None:
        raise SuggestionError(f"{ident}: agency {change.agency} is not in the rulebook")
    rules = agency.setdefault("rules", CommentedSeq())
    rule = next((r for r in rules if r.get("id") == change.rule), None)
    if rule is None:
        if not change.new_rule:
            raise SuggestionError(f"{ident}: rule {change.rule} of {change.agency} is not in the rulebook")
        new = CommentedMap(id=change.rule, any=_flow(list(change.phrases)), weight=change.weight)
        if change.category:
            new["category"] = change.category
        if change.when:
            new["when"] = CommentedMap((k, _flow(list(v))) for k, v in change.when.items())
        rules.append(new)
        return True
    key = "none" if change.kind == "add_veto" else "any"
    present = rule.get(key)
    missing = [p for p in change.phrases if p not in (present or [])]
    if not missing:
        return False
    if present is None:
        rule[key] = _flow(missing)
    else:
        present.extend(missing)
    return True


def _flow(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _replace_checked(path: Path, text: str) -> None:
    """Write beside the rulebook (its includes resolve the same), load it, then swap it in."""
    handle, name = tempfile.mkstemp(prefix=".suggested-", suffix=".yaml", dir=path.parent)
    staged = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            load_rulebook(staged)
        except RulebookError as error:
            raise SuggestionError(f"the rulebook would not load after the change: {error}") from error
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
