"""Polling for a condition in tests that drive the daemon in real time."""
from __future__ import annotations

import time

import pytest


def wait_for(predicate, timeout=60.0, step=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    pytest.fail(f"timed out waiting for {what}")
