"""The transport's public retry policy, which the client and the blob downloads share."""

from __future__ import annotations

from hpcbox_registry import RegistryConfig
from hpcbox_registry.transport import Transport


def test_backoff_doubles_with_a_quarter_of_jitter_and_a_bound():
    transport = Transport(RegistryConfig(backoff_factor=1.0, max_backoff=5.0))
    for attempt, base in ((0, 1.0), (1, 2.0), (2, 4.0)):
        delay = transport.backoff(attempt)
        assert base <= delay <= base * 1.25
    assert transport.backoff(5) == 5.0
    assert transport.backoff(0, retry_after=3.0) == 3.0
    assert transport.backoff(0, retry_after=99.0) == 5.0


def test_pause_sleeps_the_backoff_through_the_replaceable_sleep():
    transport = Transport(RegistryConfig(backoff_factor=1.0, max_backoff=5.0))
    slept = []
    transport.sleep = slept.append
    assert transport.pause(1, retry_after=2.5) == 2.5
    assert slept == [2.5]
    transport._sleep = slept.append  # the private name of 0.2.0 still reaches the same hook
    transport.pause(0, retry_after=1.0)
    assert slept == [2.5, 1.0]
