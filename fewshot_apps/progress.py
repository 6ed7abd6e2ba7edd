"""Progress reporting that suits where the output goes.

On a terminal a tqdm bar redraws one line. Anywhere else (a log file, CI, a pipe) a redrawn
bar becomes thousands of lines, so :func:`progress_bar` writes one plain line every
``log_every`` percent instead. ``--progress`` on the command line (or ``FEWSHOT_PROGRESS=bar``)
forces bars; ``FEWSHOT_PROGRESS=log`` forces log lines; ``FEWSHOT_PROGRESS=off`` silences both.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator

MODES = ("auto", "bar", "log", "off")
_forced: str | None = None


def set_mode(mode: str | None) -> None:
    """Force a mode for this process (the CLI's ``--progress`` sets ``"bar"``)."""
    global _forced
    if mode is not None and mode not in MODES:
        raise ValueError(f"progress mode must be one of {MODES}, not {mode!r}")
    _forced = mode


def mode() -> str:
    """``"bar"``, ``"log"`` or ``"off"``: what a progress report does now."""
    chosen = _forced or os.environ.get("FEWSHOT_PROGRESS", "auto").strip().lower() or "auto"
    if chosen not in MODES:
        chosen = "auto"
    if chosen == "auto":
        stream = sys.stderr
        return "bar" if stream is not None and stream.isatty() else "log"
    return chosen


class LogProgress:
    """The parts of tqdm's interface the package uses, writing a line per ``log_every``%."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None,
                 desc: str = "", unit: str = "it", log_every: float = 10.0,
                 disable: bool = False, initial: int | float = 0):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.disable = disable
        self.postfix = ""
        self._step = max(float(log_every), 1.0)
        self._next = self._step
        if self.total:  # a resumed run logs from where it stands
            while self._next <= 100.0 * self.n / self.total:
                self._next += self._step
        self._start = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("LogProgress made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        values = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def update(self, n: int | float = 1) -> None:
        self.n += n
        if self.disable or not self.total:
            return
        percent = 100.0 * self.n / self.total
        if percent >= self._next and percent < 100.0:
            self._write(percent)
            while self._next <= percent:
                self._next += self._step

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.disable and (self.n or self.total):
            self._write(100.0 * self.n / self.total if self.total else None)

    def _write(self, percent: float | None) -> None:
        elapsed = time.monotonic() - self._start
        done = f"{percent:3.0f}% " if percent is not None else ""
        of = f"/{self.total:g}" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {done}({self.n:g}{of} {self.unit}, {elapsed:.0f} s{extra})",
              file=sys.stderr, flush=True)


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", enabled: bool = True,
                 initial: int | float = 0, log_every: float = 10.0, **tqdm_kwargs):
    """A tqdm bar on a terminal, a line every ``log_every`` percent elsewhere.

    ``enabled=False`` (a caller's ``progress=False``) silences it, whatever the mode.
    """
    how = mode() if enabled else "off"
    if how == "bar":
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial,
                    **tqdm_kwargs)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, log_every=log_every,
                       disable=how == "off", initial=initial)


__all__ = ["LogProgress", "mode", "progress_bar", "set_mode"]
