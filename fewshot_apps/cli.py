"""`fewshot-apps` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import warnings
from pathlib import Path

from fewshot_apps import __version__
from fewshot_apps.errors import FewshotError
from fewshot_apps.paths import cache_dir, check_output_file, data_dir


def cmd_data_list(args) -> int:
    from fewshot_apps.sources import builtin_card_names, load_card

    print(f"data directory: {data_dir()}")
    print(f"{'name':<24} {'domain':<10} {'present':<8} title")
    for name in builtin_card_names():
        card = load_card(name)
        print(f"{name:<24} {card.domain:<10} {'yes' if card.is_present else 'no':<8} {card.title}")
    return 0


def cmd_data_fetch(args) -> int:
    from fewshot_apps.sources import fetch, load_card

    card = load_card(args.name)
    written = fetch(card, force=args.force)
    if written:
        print(f"{card.name}: downloaded into {card.root}: " + ", ".join(map(str, written)))
    else:
        print(f"{card.name}: already in {card.root}; nothing downloaded")
    return 0


def _split_options(args, seed_dest: str) -> dict:
    """The data set's split options given on the command line (a molecule CSV's test
    assays and fraction; the split seed), only those given."""
    options = {"test_assays": _test_assays(args), "test_fraction": args.test_fraction}
    options = {k: v for k, v in options.items() if v is not None}
    if getattr(args, seed_dest):
        options["seed"] = getattr(args, seed_dest)
    return options


def cmd_data_inspect(args) -> int:
    from fewshot_apps.api import describe_dataset

    print(describe_dataset(args.name, progress=not args.quiet, **_split_options(args, "seed")))
    return 0


def read_settings(config_file: str | None, sets: list[str]) -> dict:
    """Flat settings from a TOML file (tables become ``table.key``) and ``--set key=value``."""
    settings: dict = {}
    if config_file:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        from fewshot_apps.errors import DataError

        try:
            with open(config_file, "rb") as f:
                raw = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise DataError(config_file, f"cannot read the config: {exc}") from None
        for key, value in raw.items():
            if isinstance(value, dict) and key in ("encoder", "learner"):
                settings.update({f"{key}.{k}": v for k, v in value.items()})
            elif isinstance(value, dict):  # [train], [episode]: plain keys
                settings.update(value)
            else:
                settings[key] = value
    for item in sets:
        if "=" not in item:
            raise FewshotError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        settings[key.strip()] = value.strip()
    return settings


def cmd_train(args) -> int:
    """`mol train` and `rec train`, also under ``torchrun``: the process group spans the
    whole command, rank 0 builds the data cache first, and only rank 0 reports."""
    from fewshot_apps import api

    # Before the data set loads: this fails in milliseconds, not after minutes of featurizing.
    api.check_run_folder(args.out, args.resume)
    settings = read_settings(args.config, args.set)
    if args.device:
        settings["device"] = args.device
    for key in ("shots", "support_size"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    api.check_command(args.dataset, args.command)
    api.train_from_source(args.dataset, args.learner, args.out, settings, resume=args.resume,
                          progress=not args.quiet, load_options=_split_options(args, "split_seed"),
                          report=lambda ds, learner: _report_training(args, ds, learner))
    return 0


def _report_training(args, ds, learner) -> None:
    from fewshot_apps import api

    result = learner.train_result
    selected = (f"best validation {ds.validation_metric} {result.best_valid:.4f} at step "
                f"{result.best_step}" if result.best_valid is not None else
                f"{ds.unvalidated_reason}, so no model selection: the last step's model is kept")
    print(f"trained {args.learner} on {ds.name}: {result.steps_run} steps, {selected}; "
          f"model in {args.out}")
    calibration = getattr(learner, "calibration", None)
    if calibration is not None:  # fitted on the validation tasks after training
        what = "probabilities " if ds.label_kind == "classification" else "rating interval: "
        print(what + calibration.describe())
    if getattr(learner, "implicit", None) is not None:  # trained with the implicit objective
        a = learner.rank_share
        print(f"ranking: {1 - a:g} x the implicit score + {a:g} x the prediction, each "
              f"standardized (rank_rating_weight {a:g})")
    if args.evaluate:
        results, skipped = api.evaluate(learner, ds, shots=(args.shots or 10,))
        print(api.mean_by_support(results).to_string(index=False))
        if skipped:
            print(f"not scored: {skipped} (draws, or metric values a draw could not give)")


def _test_assays(args):
    """The test assays named on the command line: a list of exact names (--test-assay,
    --test-assays-file), a comma-separated string the loader reads against the data's assay
    names (--test-assays), or None."""
    if args.test_assay:
        return list(args.test_assay)
    if args.test_assays_file:
        from fewshot_apps.api import read_name_list

        return read_name_list(args.test_assays_file)
    return args.test_assays or None


def add_split_arguments(p: argparse.ArgumentParser, seed_flags: tuple[str, ...],
                        seed_dest: str) -> None:
    """The test split of a molecule CSV of your own (`data inspect`, `mol train`)."""
    group = p.add_argument_group(
        "split of a molecule CSV of your own",
        "Which assays are test tasks (cards fix their own split and refuse these options). "
        "Name them with --test-assay (repeatable; exact names, commas allowed, e.g. "
        "'Injury, poisoning and procedural complications'), --test-assays-file, or "
        "--test-assays (a comma list; a comma inside a known assay name is kept when the list "
        "reads only one way). Unknown names are an error listing close matches. Without "
        "named test assays, --test-fraction of them is drawn with the seed. Of the other "
        "assays, 10% (at least one when there are 3 or more) are held out for validation.")
    which = group.add_mutually_exclusive_group()
    which.add_argument("--test-assay", action="append", metavar="NAME",
                       help="a test assay by its exact name (repeat for more)")
    which.add_argument("--test-assays", metavar="LIST",
                       help="comma-separated test assays")
    which.add_argument("--test-assays-file", metavar="FILE",
                       help="test assays, one name per line (# comments)")
    group.add_argument("--test-fraction", type=float, metavar="F",
                       help="fraction of the assays drawn as test tasks (default 0.2)")
    group.add_argument(*seed_flags, dest=seed_dest, type=int, default=0, metavar="N",
                       help="seed of the drawn test and validation assays (default 0)")


def _check_out_file(args) -> None:
    """A ``--out`` CSV that cannot be written is refused before the model runs."""
    if args.out:
        check_output_file(args.out)


def _write_csv(table, out: str) -> None:
    """``table`` as CSV at ``out``, making the folders above it; FewshotError naming ``out``
    when the system refuses (a full disk, a file that appeared since the check)."""
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    except OSError as exc:
        raise FewshotError(f"--out {out}: cannot write the CSV ({exc.strerror or exc})") from None


def _print_report(lines: list[str]) -> None:
    """What ran and what was skipped: to stderr, so stdout can carry the table."""
    for line in lines:
        print(line, file=sys.stderr)


def cmd_mol_predict(args) -> int:
    from fewshot_apps.api import predict_assay

    _check_out_file(args)
    table = predict_assay(args.model, args.support, args.query,
                          smiles_column=args.smiles_column, label_column=args.label_column,
                          query_smiles_column=args.query_smiles_column, seed=args.seed)
    n_bad, n_warned = int((table["error"] != "").sum()), int((table["warning"] != "").sum())
    _write_assay_table(args, table, f"predictions ({n_bad} with errors, {n_warned} with "
                       "warnings)", table[table["rank"].notna()].sort_values("rank").head(10),
                       hidden=["model"])
    return 0


def _write_assay_table(args, table, written: str, preview, hidden: list[str]) -> None:
    """Report lines to stderr; the CSV to ``--out`` (saying what was written, and a preview
    of ``preview`` unless ``--quiet``) or to stdout."""
    _print_report(table.attrs["report"])
    if not args.out:
        table.to_csv(sys.stdout, index=False)
        return
    _write_csv(table, args.out)
    print(f"wrote {len(table)} {written} to {args.out}", file=sys.stderr)
    if not args.quiet:
        hidden = hidden + (["warning"] if (preview["warning"] == "").all() else [])
        print(preview.drop(columns=hidden).to_string(index=False,
                                                     float_format=lambda v: f"{v:.3f}"))


def cmd_mol_suggest(args) -> int:
    from fewshot_apps.api import suggest_assays

    _check_out_file(args)
    table = suggest_assays(args.model, args.support, args.candidates, args.budget,
                           strategy=args.strategy, beta=args.beta, diversity=args.diversity,
                           smiles_column=args.smiles_column, label_column=args.label_column,
                           query_smiles_column=args.candidates_smiles_column, seed=args.seed)
    n_bad, n_picked = int((table["error"] != "").sum()), int(table["pick"].notna().sum())
    _write_assay_table(args, table, f"candidates ({n_picked} picked, {n_bad} with errors)",
                       table[table["pick"].notna()].sort_values("pick"),
                       hidden=["model", "strategy", "error"])
    return 0


def cmd_rec_recommend(args) -> int:
    from fewshot_apps.api import recommend

    _check_out_file(args)
    table = recommend(args.model, args.ratings, k=args.top_k, dataset=args.dataset,
                      min_item_ratings=args.min_item_ratings, item_column=args.item_column, rating_column=args.rating_column,
                      user_column=args.user_column)
    _write_ranked_table(args, table, "recommendations", hidden=["model"])
    return 0


def _write_ranked_table(args, table, written: str, hidden: list[str], na_rep: str = "NaN") -> None:
    """Report lines to stderr; the CSV to ``--out`` (saying what was written); the table,
    less ``hidden`` columns, on stdout unless ``--out`` with ``--quiet``."""
    _print_report(table.attrs["report"])
    if args.out:
        _write_csv(table, args.out)
        print(f"wrote {len(table)} {written} to {args.out}", file=sys.stderr)
        if args.quiet:
            return
    print(table.drop(columns=hidden).to_string(index=False, na_rep=na_rep,
                                               float_format=lambda v: f"{v:.3f}"))


def cmd_rec_onboard(args) -> int:
    from fewshot_apps.api import onboard

    _check_out_file(args)
    table = onboard(args.dataset, args.n, model=args.model, strategy=args.strategy,
                    seed=args.seed)
    _write_ranked_table(args, table, "items to ask about", hidden=["strategy"], na_rep="")
    return 0


def _print_summary(summary, out, extra_columns: list[str]) -> None:
    """The headline metrics of a summary (the full table is in summary.csv)."""
    from fewshot_apps.core.registry import PROTOCOLS

    headline = {m for entry in PROTOCOLS.entries() for m in entry.main_metrics}
    main = summary[summary["item_split"].isin(["", "all"]) & summary["metric"].isin(headline)]
    cols = ["dataset", "learner", *extra_columns[:1], "shots", "support_size", "metric", "mean",
            "ci95_low", "ci95_high", "n_tasks", *extra_columns[1:]]
    print(main[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwrote {out}/results.csv, summary.csv, report.md, report.html, run.json")


def cmd_bench(args) -> int:
    from fewshot_apps.api import run_suite

    learners = None  # the suite's
    if args.learners is not None:  # "" or "," names none: an error, not every learner
        learners = [name.strip() for name in args.learners.split(",") if name.strip()]
    summary = run_suite(args.suite, args.out, learners=learners, preset=args.preset,
                        seeds=args.seeds, device=args.device or "auto",
                        progress=not args.quiet)
    if summary.empty:
        print("no results")
        return 1
    _print_summary(summary, args.out, ["family", "train_seconds"])
    return 0


def cmd_evaluate(args) -> int:
    from fewshot_apps.api import evaluate_saved_model

    summary = evaluate_saved_model(args.model, args.suite, args.out, preset=args.preset,
                                   seeds=args.seeds)
    _print_summary(summary, args.out, [])
    return 0


def cmd_ensemble(args) -> int:
    from fewshot_apps.api import save_ensemble

    out = save_ensemble(args.model, args.out)
    print(f"saved an ensemble of {len(args.model)} models to {out}; use it as any saved "
          f"model (--model {out})")
    return 0


def cmd_cache_info(args) -> int:
    root = cache_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    total = sum(p.stat().st_size for p in files)
    print(f"cache directory: {root}")
    print(f"{len(files)} files, {total / 2**20:.1f} MiB")
    for p in files[:50]:
        print(f"  {p.stat().st_size / 2**20:8.1f} MiB  {p.relative_to(root)}")
    return 0


def cmd_cache_clear(args) -> int:
    root = cache_dir()
    if root.exists():
        shutil.rmtree(root)
    print(f"cleared {root}")
    return 0


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action="store_true",
                   help="progress bars even when the output is not a terminal (default: bars "
                   "on a terminal, a log line every 10%% otherwise)")


def add_train_arguments(p: argparse.ArgumentParser, dataset_help: str, learner_help: str,
                        evaluate_help: str) -> None:
    """The arguments `mol train` and `rec train` share."""
    p.add_argument("--dataset", required=True, help=dataset_help)
    p.add_argument("--learner", required=True, help=learner_help)
    p.add_argument("--config", help="TOML file of settings ([train], [encoder], [learner])")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting, e.g. steps=2000, max_minutes=10, encoder.hidden=256, "
                   "learner.inner_steps=3")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    p.add_argument("--out", required=True, help="run directory (model, config, log); one "
                   "that holds a trained model is refused unless --resume")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument("--evaluate", action="store_true", help=evaluate_help)
    support = p.add_mutually_exclusive_group()
    support.add_argument("--shots", type=int, metavar="K",
                         help="training episodes with K examples per class (classification; "
                         "default 10), and K for --evaluate")
    support.add_argument("--support-size", dest="support_size", type=int, metavar="N",
                         help="training episodes with N support examples (stratified for "
                         "classification; rating data: default 10)")
    p.add_argument("--quiet", action="store_true")
    add_progress_argument(p)


def build_parser() -> argparse.ArgumentParser:
    from fewshot_apps.core.registry import MODELS, default_model, meta_learners

    mol_default = MODELS.get(default_model("molecules"))
    mol_others = [n for n in MODELS.names(domain="molecules", family="classic", support_only=True)
                  if n != mol_default.name]
    parser = argparse.ArgumentParser(
        prog="fewshot-apps",
        description="Few-shot meta-learning for cold-start recommendation and molecules.",
    )
    parser.add_argument("--version", action="version", version=f"fewshot-apps {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="data sets: list, fetch, inspect").add_subparsers(
        dest="action", required=True
    )
    p = data.add_parser("list", help="the dataset cards and whether each is present locally")
    p.set_defaults(func=cmd_data_list)
    p = data.add_parser("fetch", help="download a data set into the data directory")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="download even if present")
    add_progress_argument(p)
    p.set_defaults(func=cmd_data_fetch)
    p = data.add_parser("inspect", help="counts, tasks and skipped rows of a data set")
    p.add_argument("name", help="a card name, a card.toml path, or a CSV of your own")
    add_split_arguments(p, ("--seed", "--split-seed"), "seed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_progress_argument(p)
    p.set_defaults(func=cmd_data_inspect)

    mol = sub.add_parser("mol", help="few-shot molecular property prediction").add_subparsers(
        dest="action", required=True
    )
    p = mol.add_parser("train", help="meta-train a learner on a molecule data set")
    add_train_arguments(p, "card name, card.toml or CSV",
                        ", ".join(meta_learners("classification")),
                        "then score the test tasks (K-shot, 10 draws x 3 seeds)")
    add_split_arguments(p, ("--split-seed",), "split_seed")
    p.set_defaults(func=cmd_train)

    p = mol.add_parser(
        "predict", help="predict activity for new molecules from a few labelled ones (your "
        "assay)",
        description="Scores every query molecule: the output adds probability, rank, error "
        "(SMILES RDKit rejects: kept, no score) and warning to its columns. What was skipped "
        "or looks wrong goes to stderr, naming rows: support rows RDKit rejects (skipped), "
        "SMILES with whitespace inside (RDKit reads only the part before it: 'CC O' is "
        "ethane; kept and warned), a support molecule given twice (canonical SMILES "
        "compared; kept, also when its labels conflict: fix the file if one is wrong), and "
        "query molecules that are in the support (kept and warned).")
    p.add_argument("--support", required=True,
                   help="CSV of labelled molecules: a SMILES column and a 0/1 label column")
    p.add_argument("--query", required=True,
                   help="CSV (extra columns kept) or .smi file of the molecules to score")
    p.add_argument("--model", help="a saved model folder (mol train / bench); default: the "
                   f"training-free {mol_default.name} baseline ({mol_default.summary}); "
                   f"also {', '.join(mol_others)}")
    p.add_argument("--out", help="output CSV (default: the CSV to stdout)")
    p.add_argument("--smiles-column", help="SMILES column of --support (default: detected)")
    p.add_argument("--label-column", help="label column of --support (default: detected)")
    p.add_argument("--query-smiles-column", help="SMILES column of --query (default: detected)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no preview of the top predictions")
    p.set_defaults(func=cmd_mol_predict)

    p = mol.add_parser(
        "suggest", help="which molecules to assay next: a batch of --budget candidates",
        description="Scores the candidates as `mol predict` does (same files, checks and "
        "warnings), then picks --budget of them, one at a time. Strategies (p = probability "
        "of activity): greedy = highest p first; uncertainty = p closest to 0.5 first "
        "(score p(1-p)); ucb (default) = p + beta*sqrt(p(1-p)), likely actives the model "
        "is unsure of first. Each pick subtracts diversity x the max Tanimoto similarity "
        "(ECFP, Morgan radius 2, 2048 bits) to the support and the earlier picks, so the "
        "batch spreads over chemistry (default diversity: 0.5 for ucb, 0 for greedy and "
        "uncertainty; 0 turns it off). Never picked: invalid SMILES (kept with their "
        "error), candidates that are support molecules, a second copy of a pick. Output: "
        "every candidate row plus probability, uncertainty, similarity, score, pick "
        "(1..budget, empty if not picked), reason, error, warning, model, strategy.")
    p.add_argument("--support", required=True,
                   help="CSV of labelled molecules: a SMILES column and a 0/1 label column")
    p.add_argument("--candidates", required=True,
                   help="CSV (extra columns kept) or .smi file of the molecules to choose from")
    p.add_argument("--budget", type=int, required=True, metavar="N",
                   help="how many molecules to measure next (at least 1)")
    p.add_argument("--model", help="a saved model folder (mol train / bench); default: the "
                   f"training-free {mol_default.name} baseline; also {', '.join(mol_others)}")
    p.add_argument("--strategy", default="ucb", choices=["greedy", "uncertainty", "ucb"],
                   help="greedy: highest p; uncertainty: p nearest 0.5; ucb: "
                   "p + beta*sqrt(p(1-p)) (default)")
    p.add_argument("--beta", type=float, default=1.0,
                   help="ucb exploration weight (default 1)")
    p.add_argument("--diversity", type=float, default=None,
                   help="weight of the max-Tanimoto penalty to support and earlier picks "
                   "(default 0.5 for ucb, 0 for greedy and uncertainty; 0: off)")
    p.add_argument("--out", help="output CSV (default: the CSV to stdout)")
    p.add_argument("--smiles-column", help="SMILES column of --support (default: detected)")
    p.add_argument("--label-column", help="label column of --support (default: detected)")
    p.add_argument("--candidates-smiles-column",
                   help="SMILES column of --candidates (default: detected)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no preview of the picks")
    p.set_defaults(func=cmd_mol_suggest)

    rec = sub.add_parser("rec", help="cold-start recommendation").add_subparsers(
        dest="action", required=True
    )
    p = rec.add_parser("train", help="meta-train a learner on cold-start users")
    add_train_arguments(p, "card name, card.toml or a ratings CSV (user,item,rating"
                        "[,timestamp])",
                        ", ".join(meta_learners("regression")),
                        "then score the test users (cold start, per support size)")
    p.add_argument("--split-seed", dest="split_seed", type=int, default=0, metavar="N",
                   help="seed of the user split (default 0)")
    p.set_defaults(func=cmd_train, test_assay=None, test_assays=None, test_assays_file=None,
                   test_fraction=None)

    p = rec.add_parser("recommend", help="top-k items for a new user from a few ratings")
    p.add_argument("--ratings", required=True, help="CSV of item ids (the data set's ids) "
                   "and ratings; a user column gives one list per user")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--min-item-ratings", type=int, default=0, metavar="N",
                   help="recommend only items with at least N training ratings (rating "
                   "models rank films rated once or twice too high; default 0: no filter)")
    p.add_argument("--model", help="a saved model folder (rec train / bench), or a baseline "
                   f"({', '.join(MODELS.names(domain='recsys', family='classic'))}); default: "
                   "training-free item popularity blended with item-feature similarity")
    p.add_argument("--dataset", help="card name, card.toml or ratings CSV (default: the "
                   "model's data set, else movielens-latest-small)")
    p.add_argument("--out", help="output CSV (default: print the list)")
    p.add_argument("--item-column", help="default: detected (item, movieId, ...)")
    p.add_argument("--rating-column", help="default: detected (rating, ...)")
    p.add_argument("--user-column", help="default: detected (user, userId, ...)")
    p.add_argument("--quiet", action="store_true", help="with --out: print nothing but notes")
    p.set_defaults(func=cmd_rec_recommend)

    p = rec.add_parser(
        "onboard", help="which items to ask a brand-new user to rate first",
        description="Proposes --n items to ask a new user about, from the data set's "
        "meta-train ratings. Strategies: informative (default) = greedy, each next item "
        "maximizing popularity x spread - redundancy, where popularity = log(1 + ratings) "
        "scaled to [0, 1] (users know it), spread = the standard deviation of its ratings, "
        "shrunk by 5 pseudo-ratings toward the overall one (its ratings tell users apart), "
        "and redundancy = its largest similarity to the items above it (co-raters' cosine, "
        "as item-knn; with --model, the cosine of the model's item embeddings); divisive = "
        "popularity x spread; popular = most rated first; random = a seeded random order. "
        "Output: rank, item, title (when the data set has titles), n_ratings, popularity, "
        "spread, redundancy, score.")
    p.add_argument("--dataset", help="card name, card.toml or ratings CSV (default: the "
                   "model's data set, else movielens-latest-small)")
    p.add_argument("--n", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--strategy", default="informative",
                   choices=["informative", "divisive", "popular", "random"],
                   help="default: informative")
    p.add_argument("--model", help="a saved model folder (rec train / bench), mf or item-knn: "
                   "its item embeddings measure redundancy (default: co-raters' cosine)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random strategy")
    p.add_argument("--out", help="output CSV (default: print the table)")
    p.add_argument("--quiet", action="store_true", help="with --out: print nothing but notes")
    p.set_defaults(func=cmd_rec_onboard)

    p = sub.add_parser("bench", help="run a benchmark suite and write its report")
    p.add_argument("--suite", required=True, help="demo, tox21, muv, fsmol, "
                   "movielens-latest-small, ... or a suite .toml")
    p.add_argument("--learners", help="comma-separated subset of the suite's learners")
    # the suite checks the name (a suite may leave out the optional ``published``)
    p.add_argument("--preset", default="fast",
                   help="training budget and draws: smoke, fast (default), full, or published "
                   "(the episode counts of the learners' published counterparts; fsmol)")
    p.add_argument("--seeds", type=int, help="number of evaluation seeds (default: the preset's)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument("--out", required=True, help="output folder (rerun to continue)")
    p.add_argument("--quiet", action="store_true")
    add_progress_argument(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("evaluate", help="score a trained model with a suite's protocol")
    p.add_argument("--model", required=True, help="a saved model folder")
    p.add_argument("--suite", required=True, help="a suite of the model's data set")
    p.add_argument("--preset", default="full",
                   help="sets the evaluation draws and seeds (default: full)")
    p.add_argument("--seeds", type=int, help="number of evaluation seeds")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "ensemble", help="save the mean of trained models' predictions as one model",
        description="Saves a model folder that predicts the mean of its members' predictions "
        "(each member's calibrated probabilities, or ratings). Use it wherever a saved model "
        "goes: evaluate --model, mol predict --model, rec recommend --model. The members are "
        "copied into OUT/members/; they must be trained on the same data set, read the same "
        "way, and its test tasks are refused if any member was trained or selected on them.")
    p.add_argument("--model", action="append", required=True,
                   help="a trained model folder (mol train, rec train, a suite's models/); "
                   "give two or more")
    p.add_argument("--out", required=True, help="the ensemble's folder (must not hold a model)")
    p.set_defaults(func=cmd_ensemble)

    cache = sub.add_parser("cache", help="the cache of derived files").add_subparsers(
        dest="action", required=True
    )
    cache.add_parser("info", help="where the cache is and what it holds").set_defaults(
        func=cmd_cache_info
    )
    cache.add_parser("clear", help="delete the cache").set_defaults(func=cmd_cache_clear)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "progress", False):
        from fewshot_apps.progress import set_mode

        set_mode("bar")
    try:
        with warnings.catch_warnings():
            # The package's warnings speak to the user: one plain line, not a source location.
            warnings.showwarning = _show_warning
            return args.func(args)
    except FewshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # meta_train's TrainingInterrupted says at which step and where the checkpoint is
        trained = getattr(exc, "step", None) is not None
        print(str(exc) if trained else "interrupted", file=sys.stderr)
        return 143 if getattr(exc, "signum", None) == signal.SIGTERM else 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "build_parser"]
