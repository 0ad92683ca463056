"""The failed-credential throttle shared by serve's login and the control API's token check."""

from __future__ import annotations

from tps19.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_free_failures_then_each_one_doubles_the_wait_and_success_forgets():
    clock = Clock()
    t = FailureThrottle(free=3, base_s=1.0, max_s=8.0, clock=clock)
    for _ in range(2):
        assert t.retry_after("a") == 0
        t.failed("a")
    assert t.retry_after("a") == 0
    t.failed("a")  # third: blocked 1 s
    assert t.retry_after("a") == 1.0 and t.retry_after("b") == 0
    waits = []
    for _ in range(4):
        clock.now += t.retry_after("a")
        t.failed("a")
        waits.append(t.retry_after("a"))
    assert waits == [2.0, 4.0, 8.0, 8.0]  # capped
    t.succeeded("a")
    assert t.retry_after("a") == 0


def test_many_addresses_failing_together_pause_everyone_for_the_minute():
    clock = Clock()
    t = FailureThrottle(free=5, global_per_minute=10, clock=clock)
    for i in range(10):
        t.failed(f"10.0.0.{i}")
    assert t.retry_after("192.0.2.1") == 60.0
    clock.now += 61
    assert t.retry_after("192.0.2.1") == 0
