"""Progress reports: a bar on a terminal, a few log lines elsewhere (a log file, CI)."""

from __future__ import annotations

import io
import sys

import pytest

from fewshot_apps import progress
from fewshot_apps.progress import LogProgress, progress_bar


@pytest.fixture(autouse=True)
def _auto_mode(monkeypatch):
    monkeypatch.delenv("FEWSHOT_PROGRESS", raising=False)
    progress.set_mode(None)
    yield
    progress.set_mode(None)


def test_not_a_terminal_logs_a_line_per_ten_percent(capsys):
    assert progress.mode() == "log"  # pytest captures stderr: not a terminal
    for _ in progress_bar(range(1000), desc="work"):
        pass
    lines = capsys.readouterr().err.strip().splitlines()
    assert 9 <= len(lines) <= 11, lines
    assert lines[0].startswith("work:  10% (100/1000")
    assert lines[-1].startswith("work: 100% (1000/1000")


def test_update_total_and_resume_start_where_the_run_stands(capsys):
    bar = progress_bar(total=200, initial=150, desc="meta-train")
    for _ in range(50):
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    # 80% and 90% then the closing 100%: nothing logged for the steps before the resume
    assert [line.split()[1] for line in lines] == ["80%", "90%", "100%"]


def test_disabled_prints_nothing(capsys):
    for _ in progress_bar(range(50), desc="quiet", enabled=False):
        pass
    assert capsys.readouterr().err == ""


def test_forced_bar_uses_tqdm_and_off_silences(monkeypatch, capsys):
    progress.set_mode("bar")
    bar = progress_bar(range(3), desc="x")
    assert type(bar).__module__.startswith("tqdm")
    bar.close()
    capsys.readouterr()
    progress.set_mode(None)
    monkeypatch.setenv("FEWSHOT_PROGRESS", "off")
    assert isinstance(progress_bar(range(3)), LogProgress)
    for _ in progress_bar(range(3), desc="x"):
        pass
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_bar(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert progress.mode() == "bar"


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="progress mode"):
        progress.set_mode("sometimes")
