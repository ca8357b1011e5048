"""What the backends' `ChunkStream`s share: one binary COPY into a job table, kept open across a fan-out's
chunks, or its rows spooled to a local temporary file while another stream's COPY holds the connection.

A subclass says which queues it serves and which chunks it accepts, renders a chunk's rows and results
(`_encode`), opens its COPY (`_enter`), translates driver errors (`_errors`) and names a refusal
(`_refused`). This base runs the statement: the signature, the rows, the spool sent first when the COPY
starts, the trailer, a unique violation at the end turned into `StreamRefused`, an abort.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, ExitStack
from typing import IO, TYPE_CHECKING, Any

import psycopg

from scheduler.backends.copybinary import SIGNATURE, TRAILER
from scheduler.errors import BackendError

if TYPE_CHECKING:
    from scheduler.backends.base import StreamRefused
    from scheduler.types import Batch, ChunkResult, QueueRef

SPOOL_MEMORY = 8 << 20
"""Spooled rows stay in memory up to this many bytes, then go to a temporary file ($TMPDIR, else /tmp)."""
SPOOL_READ = 1 << 20


class CopyStream(ABC):
    """A `ChunkStream` that is one binary COPY (see `scheduler.backends.base.ChunkStream`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._open: ExitStack | None = None
        self._copy: psycopg.Copy | None = None
        self._spool: IO[bytes] | None = None

    @abstractmethod
    def serves(self, queue: QueueRef) -> bool: ...

    @abstractmethod
    def accepts(self, queue: QueueRef, prepared: object | None) -> bool: ...

    @abstractmethod
    def _encode(self, batch: Batch, prepared: object) -> tuple[bytes | memoryview, ChunkResult]:
        """The chunk's COPY rows (no signature or trailer) and its results if the COPY lands."""

    @abstractmethod
    def _enter(self, stack: ExitStack) -> psycopg.Copy:
        """Open the COPY (and whatever it needs around it) on the connection, inside `stack`."""

    @abstractmethod
    def _errors(self) -> AbstractContextManager[None]:
        """Translate driver errors into `BackendError` (keeping the original as `__cause__`)."""

    @abstractmethod
    def _refused(self, error: psycopg.errors.UniqueViolation) -> StreamRefused:
        """The refusal to raise when the COPY hit a unique index."""

    def write(self, batch: Batch, prepared: object, *, spool: bool = False) -> ChunkResult:
        data, result = self._encode(batch, prepared)
        if spool and self._copy is None:
            if self._spool is None:
                self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 (lives across writes: closed once sent by `_start`, or by `abort`)
            self._spool.write(data)
        else:
            self._send(data)
        return result

    def close(self) -> None:
        if self._copy is None and self._spool is not None:
            self._send(b"")  # starts the COPY, which sends the spool first
        stack, copy = self._open, self._copy
        if stack is None or copy is None:
            return
        self._open = self._copy = None
        try:
            with self._errors():
                copy.write(TRAILER)
                stack.close()
        except BackendError as exc:
            if isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                raise self._refused(exc.__cause__) from exc.__cause__
            raise

    def abort(self, error: BaseException) -> None:
        stack, spool = self._open, self._spool
        self._open = self._copy = self._spool = None
        if spool is not None:
            spool.close()
        if stack is not None:
            stack.__exit__(type(error), error, error.__traceback__)

    def _send(self, data: bytes | memoryview) -> None:
        with self._errors():
            if self._copy is None:
                self._start()
            assert self._copy is not None
            if data:
                self._copy.write(data)

    def _start(self) -> None:
        """Open the COPY, then send the rows spooled while another stream's COPY held the connection."""
        stack = ExitStack()
        try:
            copy = self._enter(stack)
            copy.write(SIGNATURE)
            spool, self._spool = self._spool, None
            if spool is not None:
                with spool:
                    spool.seek(0)
                    while piece := spool.read(SPOOL_READ):
                        copy.write(piece)
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._open, self._copy = stack, copy
