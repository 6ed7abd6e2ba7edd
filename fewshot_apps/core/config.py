"""Settings dataclasses from dicts (TOML tables, CLI ``--set key=value`` strings).

:func:`config_from_dict` fills a dataclass's defaults with the given values, checking every key
and parsing strings by the field's annotation (bool, int, float, str, ``Literal[...]``,
``X | None``), so ``{"inner_steps": "3", "first_order": "true"}`` works like
``{"inner_steps": 3, "first_order": True}``.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import types
import typing
from typing import Any, Literal, TypeVar

from fewshot_apps.errors import FewshotError

T = TypeVar("T")

_NONE_WORDS = ("none", "null")

#: Settings that count something (training steps, episodes, examples, layers, widths). Below
#: 1 they fail deep inside training (a negative tensor size, a division by zero) or, worse,
#: train nothing and save the untrained model, so reading them refuses it: training, episode
#: and encoder settings, and a saved model's encoder and featurizer. Learner settings are
#: not checked by name: there 0 can mean "none" (``head_hidden``, ``fit_steps``, a transfer
#: baseline's pre-training ``steps``). ``n_negatives``, ``ecfp_radius`` may be 0.
COUNT_SETTINGS = frozenset({
    "steps", "meta_batch_size", "eval_every", "checkpoint_every", "patience",  # training
    "shots", "support_size", "valid_support_size", "n_query", "valid_draws",  # episodes
    "hidden", "depth", "out_dim", "ecfp_bits", "ecfp_hidden", "bits", "profile_hidden",
})


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a setting may take: from ``low`` to ``high``; ``*_open`` leaves that end out."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = True

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        low = f"{'greater than' if self.low_open else 'at least'} {self.low:g}"
        if math.isinf(self.high):
            return low
        return f"{low} and {'below' if self.high_open else 'at most'} {self.high:g}"


POSITIVE = Range(0.0, low_open=True)
NON_NEGATIVE = Range(0.0)

#: Settings with a range, by name (training, encoder and learner settings alike): rates,
#: penalties, probabilities, time budgets, scales. Out of range they train nothing (``lr=0``
#: saves the untrained model), train the wrong way (a negative rate) or fail deep inside
#: torch (``dropout=1.5``); ``ridge`` 0 could leave protonet's covariance singular. Where 0
#: switches a thing off (no inner-loop step, no penalty, no jitter) 0 is allowed. None (unset)
#: is never checked.
RANGE_SETTINGS = {
    **dict.fromkeys(("lr", "fit_lr", "head_lr", "last_layer_lr", "grad_clip",
                     "checkpoint_minutes", "max_minutes", "temperature", "init_noise",
                     "init_outputscale", "init_lengthscale", "ridge", "eval_ridge",
                     "eval_ridge_support"),
                    POSITIVE),
    **dict.fromkeys(("inner_lr", "weight_decay", "jitter", "rank_loss_weight",
                     "label_loss_weight", "rank_affinity_scale", "rank_liking"), NON_NEGATIVE),
    "rank_rating_weight": Range(0.0, 1.0, high_open=False),
    "dropout": Range(0.0, 1.0),
    "holdout_fraction": Range(0.0, 1.0, low_open=True),
}


def config_from_dict(cls: type[T], values: dict | None, who: str) -> T:
    """``cls(**values)`` with keys checked and values parsed; ``who`` names it in errors."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise FewshotError(
            f"{who}: unknown option(s) {', '.join(unknown)}; known: {', '.join(names)}"
        )
    parsed = {
        key: coerce(value, hints[key], f"{who}: option {key}") for key, value in values.items()
    }
    for key, value in parsed.items():
        check_range(key, value, f"{who}: option {key}")
    return cls(**parsed)


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as type ``hint``; strings are parsed. FewshotError naming ``where`` if not."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        # "none" means None before it means the string "none"
        if type(None) in args and (value is None or _is_none_word(value)):
            return None
        for arg in args:
            try:
                return coerce(value, arg, where)
            except FewshotError:
                continue
        raise FewshotError(f"{where}={value!r}: expected {_hint_name(hint)}")
    if hint is type(None):
        if value is None or _is_none_word(value):
            return None
        raise FewshotError(f"{where}={value!r}: expected none")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value in allowed:
            return value
        raise FewshotError(f"{where}={value!r}: expected one of {', '.join(map(repr, allowed))}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        word = value.strip().lower() if isinstance(value, str) else None
        if word in ("true", "yes", "1", "on"):
            return True
        if word in ("false", "no", "0", "off"):
            return False
        raise FewshotError(f"{where}={value!r}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise FewshotError(f"{where}={value!r}: expected an integer")
    if hint is float:
        if not isinstance(value, bool):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
        raise FewshotError(f"{where}={value!r}: expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise FewshotError(f"{where}={value!r}: expected a string")
    return value


def settings_grid(items: list[str]) -> list[dict[str, str]]:
    """``["a=1,2", "b=x"]`` (``--grid`` options) -> every combination, ``[{"a": "1", "b":
    "x"}, {"a": "2", "b": "x"}]``; ``[{}]`` for none. FewshotError on an item that is not
    ``KEY=V1,V2,...``."""
    axes = {}
    for item in items:
        key, sep, values = item.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not choices:
            raise FewshotError(f"--grid {item!r}: expected KEY=V1,V2,...")
        axes[key.strip()] = choices
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def learner_grid(items: list[str]) -> list[dict[str, str]]:
    """``["learner.a=1,2", "learner.b=x"]`` -> every combination as ``{"a": "1", "b": "x"}``;
    ``[{}]`` when empty. Only the learner's settings can change at evaluation."""
    for item in items:
        key, _, values = (part.strip() for part in item.partition("="))
        if not key.startswith("learner.") or key == "learner." or not values.strip(", "):
            raise FewshotError(f"--grid {item!r}: expected learner.KEY=V1,V2,... (the encoder "
                               "and training settings are in the trained weights)")
    return [{key.removeprefix("learner."): value for key, value in combo.items()}
            for combo in settings_grid(items)]


def check_count(key: str, value: Any, where: str) -> None:
    """FewshotError naming ``where`` when ``key`` is one of :data:`COUNT_SETTINGS` and
    ``value`` (already parsed; None means unset) is below 1."""
    if key in COUNT_SETTINGS and value is not None and value < 1:
        raise FewshotError(f"{where}={value!r}: must be at least 1")


def check_range(key: str, value: Any, where: str) -> None:
    """FewshotError naming ``where`` when ``key`` is one of :data:`RANGE_SETTINGS` and
    ``value`` (already parsed; None means unset) is outside its range or not finite."""
    allowed = RANGE_SETTINGS.get(key)
    if allowed is None or value is None or isinstance(value, bool) \
            or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value) or value not in allowed:
        raise FewshotError(f"{where}={value!r}: must be {allowed}")


def check_fields_in_range(config: Any, who: str) -> None:
    """:func:`check_range` on every field of dataclass ``config``: a config built directly,
    not read by :func:`config_from_dict`, is held to the same ranges."""
    for field in dataclasses.fields(config):
        check_range(field.name, getattr(config, field.name), f"{who}: option {field.name}")


def parse_like(values: dict, defaults: dict, who: str) -> dict:
    """``values`` with each key of ``defaults`` parsed (:func:`coerce`) to the type of its
    default, counts and ranges checked (:func:`check_count`, :func:`check_range`); other keys
    are kept as they are.
    FewshotError names ``who.key`` (``encoder.hidden='eight': expected an integer``)."""
    parsed = dict(values)
    for key, value in values.items():
        if key in defaults:
            parsed[key] = coerce(value, type(defaults[key]), f"{who}.{key}")
            check_count(key, parsed[key], f"{who}.{key}")
            check_range(key, parsed[key], f"{who}.{key}")
    return parsed


def settings_like(defaults: dict, given: dict, who: str) -> dict:
    """``defaults`` overridden by ``given``, each value parsed (:func:`parse_like`) to the
    type of its default; FewshotError naming ``who`` for an unknown key, a value of the wrong
    kind (``encoder.hidden=abc``, ``encoder.use_ecfp=maybe``), a count below 1
    (``encoder.hidden=-4``) or a value out of range (``encoder.dropout=1.5``)."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise FewshotError(f"unknown {who} setting(s) {unknown}; known: {', '.join(defaults)}")
    return {**defaults, **parse_like(given, defaults, who)}


def constructor_defaults(cls: type, skip: tuple[str, ...] = ()) -> dict:
    """The keyword defaults of ``cls.__init__`` (minus ``skip``): a class's settings with
    their types, read without building it."""
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty and name not in skip}


def _is_none_word(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in _NONE_WORDS


def _hint_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(repr, typing.get_args(hint)))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(a) for a in typing.get_args(hint))
    return "none" if hint is type(None) else getattr(hint, "__name__", str(hint))
