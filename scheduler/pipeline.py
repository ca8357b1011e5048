"""Run a producer in a thread of its own, a bounded number of items ahead of its consumer.

The fan-out reads its cohort (a wait on the app database, then row parsing) and plans and encodes it
(client CPU) while the queue database writes the previous chunk (a wait): each stage waits with the GIL
released, so on two cores they overlap.
"""

from __future__ import annotations

import threading
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
