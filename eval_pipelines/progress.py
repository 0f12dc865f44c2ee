"""Progress of a long command on stderr: one line when a step starts, one when it ends.

The engine times its steps through a :class:`Progress` passed down by the caller. The same
step boundaries fill ``Evaluation.timings`` (``timings_s`` in run.json), so there is one clock.
The default, :data:`SILENT`, only times: the Dagster assets and a notebook print nothing.
The CLI reports on stderr, so stdout keeps only the verdict (or the ``--json`` document)::

    [  0.0s] input checks ...
    [  2.1s] input checks done in 2.1s
    [  2.1s] aggregate query ...

The bracket is the time since the command started; ``done in`` is the step's own time.
A step that raises ends with ``failed after 1.3s`` instead, before the error is printed.

:func:`choose` decides whether the CLI reports: never under ``--quiet``; always under
``--progress`` or ``EVAL_PROGRESS=1``; otherwise only when stderr is a terminal, so CI logs
and redirected output stay as they were (``EVAL_PROGRESS=0`` silences a terminal too).
"""

import os
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TextIO

PROGRESS_ENV = "EVAL_PROGRESS"
_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off"}


class Progress:
    """Times named steps; reports each start and end on ``stream`` when one is given."""

    def __init__(
        self, stream: TextIO | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._origin = clock()

    @property
    def reporting(self) -> bool:
        return self._stream is not None

    @contextmanager
    def step(
        self,
        label: str,
        timings: MutableMapping[str, float] | None = None,
        key: str | None = None,
    ) -> Iterator[None]:
        """Run the ``with`` body as step ``label``; on success store its seconds in
        ``timings[key]`` when both are given."""
        self._say(f"{label} ...")
        started = self._clock()
        try:
            yield
        except BaseException:
            self._say(f"{label} failed after {self._clock() - started:.1f}s")
            raise
        elapsed = self._clock() - started
        if timings is not None and key is not None:
            timings[key] = elapsed
        self._say(f"{label} done in {elapsed:.1f}s")

    def _say(self, text: str) -> None:
        if self._stream is None:
            return
        self._stream.write(f"[{self._clock() - self._origin:5.1f}s] {text}\n")
        self._stream.flush()


SILENT = Progress()


def choose(
    stream: TextIO,
    *,
    quiet: bool = False,
    forced: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> Progress:
    """The CLI's reporter: ``--quiet`` wins, then ``--progress``, then ``$EVAL_PROGRESS``
    (1/true/yes/on or 0/false/no/off), then whether ``stream`` is a terminal."""
    if quiet:
        return SILENT
    setting = environ.get(PROGRESS_ENV, "").strip().lower()
    if forced or setting in _ON:
        return Progress(stream)
    if setting in _OFF:
        return SILENT
    isatty = getattr(stream, "isatty", None)
    return Progress(stream) if isatty is not None and isatty() else SILENT
