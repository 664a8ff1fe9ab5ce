"""The drain waits for every consumer group the services have: a group added to a handler but
not to services/drain.py would be left undrained when `disposisi dev` stops the broker."""

import re
from pathlib import Path

from services.drain import ALL_GROUPS

SERVICES = Path(__file__).resolve().parents[2] / "services"


def test_every_consumer_group_of_the_services_is_drained() -> None:
    declared = {group for handlers in SERVICES.glob("*/handlers.py")
                for group in re.findall(r'group_id="([^"]+)"', handlers.read_text())}
    assert declared, "no consumer groups found: the pattern no longer matches handlers.py"
    assert declared == set(ALL_GROUPS)
