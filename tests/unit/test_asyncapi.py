"""The AsyncAPI document is generated from the contract models and committed: keep it current."""

from pathlib import Path

import yaml

from shared.asyncapi import document
from shared.contracts import Topics

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_contracts() -> None:
    # Compared as data: the generator does not keep channels in a fixed order.
    assert yaml.safe_load(DOC.read_text()) == yaml.safe_load(document("yaml")), \
        "regenerate: disposisi asyncapi > docs/asyncapi.yaml"


def test_every_topic_is_documented_with_the_envelope_fields() -> None:
    spec = yaml.safe_load(document("yaml"))
    assert set(spec["channels"]) == {*Topics.fixed(), Topics.agency("<CODE>")}
    schemas = spec["components"]["schemas"]
    envelopes = [s for name, s in schemas.items() if name.startswith("Envelope")]
    assert len(envelopes) == 12  # one per topic, and the agency queue has two kinds
    for schema in envelopes:
        assert {"id", "type", "schema_version", "time", "tenant", "ticket_id", "data"} <= set(
            schema["properties"])
