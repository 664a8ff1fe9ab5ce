"""A failed end-to-end test shows the tail of `disposisi dev`'s log next to its own output:
the test's temporary directory is gone from a CI run, and a page's "Internal Server Error"
says nothing without the server's traceback."""

from collections.abc import Generator

import pytest

from tests.e2e.dev_support import DevSystem

LOG_LINES = 80


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                         pytest.TestReport]:
    report = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, DevSystem):
                report.sections.append((f"disposisi dev log, last {LOG_LINES} lines ({name})",
                                        value.output_tail(LOG_LINES)))
    return report
