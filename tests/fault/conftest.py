"""Fault-injection tests: the ``fault`` marker (deselect with ``-m "not fault"``)."""

from __future__ import annotations


def pytest_configure(config):  # noqa: ANN001, ANN201 - pytest's hook
    config.addinivalue_line("markers", "fault: fault-injection trials (kills, two writers, disk "
                            "full, bit flips); minutes, not seconds")
