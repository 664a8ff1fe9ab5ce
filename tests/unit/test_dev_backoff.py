"""The restart delay of `disposisi dev`: short, doubling while a process crash-loops, capped,
and back to the first delay once the process stayed up a healthy while."""

from services.supervision import FIRST_RESTART_DELAY, HEALTHY_AFTER_SECONDS, MAX_RESTART_DELAY, Backoff


def test_delay_doubles_per_quick_crash_up_to_the_cap() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay(uptime=1.0) for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert (FIRST_RESTART_DELAY, MAX_RESTART_DELAY) == (0.5, 8.0)


def test_a_healthy_run_resets_the_delay() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.next_delay(uptime=1.0)
    assert backoff.next_delay(uptime=HEALTHY_AFTER_SECONDS) == FIRST_RESTART_DELAY
    assert backoff.next_delay(uptime=2.0) == 2 * FIRST_RESTART_DELAY
