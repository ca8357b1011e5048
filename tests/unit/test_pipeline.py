"""`ahead`: a producer in its own thread, a bounded number of items ahead, with the producer's order,
errors and closing kept; `collector_paused`: the garbage collector off for overlapping blocks."""

from __future__ import annotations

import gc
import threading
from contextlib import closing
from typing import TYPE_CHECKING

import pytest

from scheduler.pipeline import ahead, collector_paused

if TYPE_CHECKING:
    from collections.abc import Iterator


class Boom(Exception):
    pass


def numbers(n: int, fail_at: int | None = None, closed: threading.Event | None = None) -> Iterator[int]:
    try:
        for i in range(n):
            if i == fail_at:
                raise Boom(f"at {i}")
            yield i
    finally:
        if closed is not None:
            closed.set()


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_items_arrive_in_order(depth: int) -> None:
    assert list(ahead(numbers(50), depth, name="t")) == list(range(50))


@pytest.mark.parametrize("depth", [0, 2])
def test_an_error_is_raised_in_the_consumer_after_the_items_before_it(depth: int) -> None:
    seen: list[int] = []
    items = ahead(numbers(10, fail_at=5), depth, name="t")
    seen.extend(next(items) for _ in range(5))
    with pytest.raises(Boom, match="at 5"):
        next(items)
    assert seen == [0, 1, 2, 3, 4]


def test_closing_early_stops_the_thread_and_closes_the_producer() -> None:
    closed = threading.Event()
    before = {t.ident for t in threading.enumerate()}
    with closing(ahead(numbers(10_000, closed=closed), 2, name="scheduler-test-ahead")) as items:
        assert next(items) == 0
    assert closed.is_set()
    assert not [
        t for t in threading.enumerate() if t.name == "scheduler-test-ahead" and t.ident not in before
    ]


def test_the_producer_runs_in_a_thread_of_its_own() -> None:
    def where() -> Iterator[str]:
        yield threading.current_thread().name

    assert list(ahead(where(), 1, name="scheduler-test-producer")) == ["scheduler-test-producer"]
    assert list(ahead(where(), 0, name="unused")) == [threading.current_thread().name]


def test_collector_paused_restores_the_collector_after_the_last_overlapping_block() -> None:
    """Overlapping blocks (two fan-outs in two threads) keep the collector off until the last one ends,
    also when a block raises; a collector that was off before stays off."""
    assert gc.isenabled()
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with collector_paused():
            first_in.set()
            second_done.wait(5)
            seen.append(gc.isenabled())

    thread = threading.Thread(target=other)
    thread.start()
    first_in.wait(5)

    def failing_fanout() -> None:
        with collector_paused():
            seen.append(gc.isenabled())
            raise RuntimeError("a failing fan-out")

    with pytest.raises(RuntimeError):
        failing_fanout()
    seen.append(gc.isenabled())  # the other thread's block is still open
    second_done.set()
    thread.join(5)
    assert seen == [False, False, False]
    assert gc.isenabled()

    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
