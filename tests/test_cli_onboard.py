"""`fewshot-apps rec onboard` end to end: the README's command prints what the README shows,
and --out writes every chosen item's row."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fewshot_apps.cli import build_parser, main

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_sample() -> list[str]:
    """The lines of the README's sample output of `rec onboard` (before its "...")."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Onboarding a new user"):]
    block = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() != "..."]


def test_the_readme_command_prints_the_readme_table(capsys):
    assert main(["rec", "onboard", "--dataset", "movielens-latest-small", "--n", "10"]) == 0
    captured = capsys.readouterr()
    # (pytest shows the deprecation warnings of the libraries; the command's lines follow)
    notes = [line for line in captured.err.splitlines() if not line.startswith("warning: ")]
    shown = notes + captured.out.splitlines()
    sample = _readme_sample()
    assert shown[:len(sample)] == sample
    assert len(captured.out.strip().splitlines()) == 11  # the header and 10 items
    assert "strategy" not in captured.out.splitlines()[0]


def test_out_writes_the_table(tmp_path, capsys):
    out = tmp_path / "ask.csv"
    assert main(["rec", "onboard", "--n", "4", "--strategy", "popular", "--out", str(out),
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"wrote 4 items to ask about to {out}" in captured.err
    assert "strategy: popular (most meta-train ratings first)" in captured.err
    table = pd.read_csv(out)
    assert list(table.columns) == ["rank", "item", "title", "n_ratings", "popularity",
                                   "spread", "redundancy", "score", "strategy"]
    assert table["rank"].tolist() == [1, 2, 3, 4] and table["n_ratings"].is_monotonic_decreasing
    assert table["title"].iat[0] == "Forrest Gump (1994)"  # ml-latest-small's most rated


def test_random_is_seeded_and_mf_gives_the_similarity(capsys):
    runs = []
    for seed in ("1", "1", "2"):
        assert main(["rec", "onboard", "--n", "5", "--strategy", "random", "--seed", seed]) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1] != runs[2]
    assert main(["rec", "onboard", "--n", "3", "--model", "mf"]) == 0
    assert "redundancy: cosine of mf's item factors" in capsys.readouterr().err


def test_the_strategies_are_the_modules():
    from fewshot_apps.domains.recsys.onboard import STRATEGIES

    rec = next(a for a in build_parser()._subparsers._group_actions[0].choices["rec"]
               ._subparsers._group_actions[0].choices.items() if a[0] == "onboard")[1]
    strategy = next(a for a in rec._actions if a.dest == "strategy")
    assert strategy.choices == list(STRATEGIES) and strategy.default == STRATEGIES[0]
