"""Reply templates per agency: the example file serves Kota Bengkulu's forms; a file that does
not fit is refused at start naming the file and the field."""

from pathlib import Path

import pytest

from services.console.app import reply_templates
from services.console.replies import ReplyTemplatesError, load_reply_templates
from shared.settings import Settings

AGENCIES = {"kota-bengkulu": {"DLH", "PUPR"}}


def test_the_example_file_loads_against_the_rulebook_and_serves_each_form() -> None:
    templates = reply_templates(Settings(auth_secret="s" * 40))
    resolved = [t.name for t in templates.for_form("kota-bengkulu", "DLH", "resolved")]
    assert resolved == ["Sampah sudah diangkut"]
    asked = [t.name for t in templates.for_form("kota-bengkulu", "DLH", "needs_info")]
    assert asked == ["Minta lokasi yang lebih tepat", "Minta foto"]  # every agency's
    assert "Sampah sudah diangkut" not in \
        [t.name for t in templates.for_form("kota-bengkulu", "PUPR", "resolved")]
    assert templates.for_form("provinsi-bengkulu", "DLH", "responded") == []


def _write(tmp_path: Path, text: str, name: str = "kota-bengkulu.yaml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("text", "problem"), [
    ("agencies:\n  DLH:\n    - name: A\n", "agencies.DLH.0.text: Field required"),
    ("agencies:\n  DLH:\n    - {name: A, text: B, actions: [rejected]}\n", "agencies.DLH.0.actions.0"),
    ("agencies:\n  DLH:\n    - {name: '', text: B}\n", "agencies.DLH.0.name"),
    ("agencies:\n  DISHUB:\n    - {name: A, text: B}\n", "agencies: DISHUB not in the rulebook"),
    ("agencies:\n  DLH:\n    - {name: A, text: B, colour: red}\n", "agencies.DLH.0.colour"),
    ("agencies: [\n", "not YAML"),
])
def test_a_file_that_does_not_fit_is_refused_naming_the_field(tmp_path: Path, text: str,
                                                               problem: str) -> None:
    with pytest.raises(ReplyTemplatesError) as refused:
        load_reply_templates(_write(tmp_path, text), AGENCIES)
    assert str(refused.value).startswith("kota-bengkulu.yaml: ")
    assert problem in str(refused.value)


def test_a_file_of_an_unknown_tenant_or_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplyTemplatesError, match="no tenant 'kota-lain'"):
        load_reply_templates(_write(tmp_path, "agencies: {}\n", "kota-lain.yaml"), AGENCIES)
    with pytest.raises(ReplyTemplatesError, match="not found"):
        load_reply_templates(tmp_path / "nowhere", AGENCIES)
    assert load_reply_templates(None, AGENCIES).for_form("kota-bengkulu", "DLH", "responded") == []
