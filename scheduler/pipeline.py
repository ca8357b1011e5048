"""Run a producer in a thread of its own, a bounded number of items ahead of its consumer.

The fan-out reads its cohort (a wait on the app database, then row parsing) and plans and encodes it
(client CPU) while the queue database writes the previous chunk (a wait): each stage waits with the GIL
released, so on two cores they overlap.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from queue import Full, Queue
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

_T = TypeVar("_T")


class _Failed:
    """What the producing thread hands over instead of an item when the producer raised."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE: Any = object()

_collector_lock = threading.Lock()
_collector_pauses = 0
_collector_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, then back as it was.

    A fan-out allocates a few objects per planned job (rows, jobs, outcomes), none of them in a reference
    cycle, and keeps up to a chunk's worth alive: the collector, triggered by the allocation count alone,
    would walk them again and again for nothing (a sixth of a 100k dry-run was measured in it). Objects
    stay freed by reference counting meanwhile; cycles made by anything else in the process wait until the
    block ends. Counted across threads: the collector is back once the last overlapping block ends.
    """
    global _collector_pauses, _collector_was_enabled
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_enabled:
                gc.enable()


def ahead(items: Iterator[_T], depth: int, *, name: str) -> Generator[_T, None, None]:
    """`items`, produced by a thread called `name` up to `depth` items ahead of the consumer.

    The items, their order and every error (re-raised here, in the consumer, when its turn comes) are
    those of `items` itself. Closing this iterator stops the thread, closes `items` in it and waits for
    it. With `depth` < 1 the items are produced in line, in the consumer's thread.
    """
    if depth < 1:
        yield from items
        return
    handoff: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def hand(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        last: object = _DONE
        try:
            for item in items:
                if not hand(item):
                    return
        except BaseException as exc:
            last = _Failed(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        hand(last)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
