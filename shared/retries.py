"""The one backoff of every sender that tries again (chat's messages and drafts, the mailbox's
mails and submissions, notify's deliveries): each keeps its own base, ceiling and number of
attempts in the settings."""


def retry_delay(attempts: int, *, base: float, ceiling: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: base, 2 base, 4 base... at most
    ``ceiling``."""
    return float(min(ceiling, base * 2 ** max(0, attempts - 1)))
