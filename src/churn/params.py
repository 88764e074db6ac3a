"""Pipeline parameters checked before anything runs: names, types, ranges and combinations.

Ploomber's command line is argparse with prefix matching, so ``--env--n_user 10`` used to be
taken as ``--env--n_users 10``. ``parse_env_args`` accepts only exact names (naming the closest
valid one otherwise) and ``validate`` checks every value, and the values together, with the
reason. The defaults come from ``env.yaml`` (read by the caller: this module does no I/O).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import yaml

ENV_PREFIX = "--env--"
# Expected churners in the validation snapshots below which a build cannot validate a model
# (a validation set with a single class has no AUC) or pass the feature checks reliably.
MIN_EXPECTED_VALID_CHURNERS = 3.0
# Time-ordered CV needs >= 3 training snapshots (folds start at the third; churn.modeling.train).
MIN_TRAIN_SNAPSHOTS = 3


class ParameterError(ValueError):
    """A pipeline parameter that cannot be used; the message names it and says why."""


# -- names ------------------------------------------------------------------------------------------
def closest(name: str, known: Sequence[str]) -> str:
    """`` (did you mean --env--X?)`` for the closest known name, or an empty string."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" (did you mean {ENV_PREFIX}{match[0]}?)" if match else ""


def check_name(name: str, known: Sequence[str]) -> str:
    """``name`` if it is a parameter, else a ``ParameterError`` naming the closest one."""
    if name in known:
        return name
    hint = closest(name, known)
    if any(k.startswith(name) for k in known) and name:
        hint += "; abbreviations are not accepted"
    raise ParameterError(f"unknown parameter {ENV_PREFIX}{name}{hint}")


def parse_env_args(argv: Sequence[str], known: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``--env--KEY VALUE`` / ``--env--KEY=VALUE`` pairs from the other arguments.

    Returns the overrides (raw strings, exact names only) and the remaining arguments in order.
    """
    overrides: dict[str, str] = {}
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith(ENV_PREFIX):
            rest.append(arg)
            i += 1
            continue
        name, eq, value = arg[len(ENV_PREFIX) :].partition("=")
        check_name(name, known)
        if not eq:
            if i + 1 >= len(args):
                raise ParameterError(f"{ENV_PREFIX}{name} needs a value")
            value = args[i + 1]
            i += 1
        if name in overrides:
            raise ParameterError(f"{ENV_PREFIX}{name} is given twice")
        overrides[name] = value
        i += 1
    return overrides, rest


def env_args(overrides: Mapping[str, Any]) -> list[str]:
    """``--env--KEY VALUE`` arguments for ploomber (the inverse of ``parse_env_args``)."""
    out: list[str] = []
    for name, value in overrides.items():
        out += [f"{ENV_PREFIX}{name}", value if isinstance(value, str) else yaml.safe_dump(value).strip()]
    return out


# -- values -----------------------------------------------------------------------------------------
def coerce(name: str, raw: Any, default: Any) -> Any:
    """``raw`` (a string from the command line, or a YAML value) as the type of ``default``."""
    if isinstance(raw, str) and not isinstance(default, str):
        try:
            raw = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            raise ParameterError(f"{name}={raw!r} is not a valid value") from None
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        raise ParameterError(f"{name}={raw!r} must be true or false")
    if isinstance(default, int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ParameterError(f"{name}={raw!r} must be a whole number")
        return raw
    if isinstance(default, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise ParameterError(f"{name}={raw!r} must be a finite number")
        return float(raw)
    if isinstance(default, list):
        if not isinstance(raw, list):
            raise ParameterError(f"{name}={raw!r} must be a list, e.g. [a, b]")
        return raw
    if isinstance(default, str):
        return raw if isinstance(raw, str) else str(raw)
    return raw


def _between(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
            return f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        return None

    return check


def _at_least(lo: int) -> Callable[[Any], str | None]:
    return lambda v: None if v >= lo else f"must be at least {lo}"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _iso_date(v: Any) -> str | None:
    try:
        date.fromisoformat(str(v))
    except ValueError:
        return "must be an ISO date (YYYY-MM-DD)"
    return None


def _redis_url(v: Any) -> str | None:
    ok = v == "" or str(v).startswith(("redis://", "rediss://", "unix://"))
    return None if ok else "must be empty (the embedded server) or a redis://, rediss:// or unix:// URL"


RULES: dict[str, Callable[[Any], str | None]] = {
    "source": _one_of("synthetic", "files"),
    "n_users": _at_least(1),
    "seed": _at_least(0),
    "start": _iso_date,
    "end": _iso_date,
    "churn_rate": _between(0, 0.9, lo_open=True),
    "scenario": _one_of("drift", "stable"),
    "churn_rate_min": _between(0, 1),
    "churn_rate_max": _between(0, 1),
    "n_snapshots": _at_least(1),
    "horizon_days": _at_least(1),
    "label_rate_min": _between(0, 1),
    "label_rate_max": _between(0, 1),
    "n_valid_snapshots": _at_least(1),
    "online_ttl_seconds": _at_least(0),
    "drift_alpha": _between(0, 1, lo_open=True, hi_open=True),
    "alert_auc_min": _between(0, 1),
    "alert_churn_rate_max": _between(0, 1),
    "retrain_min_drifted": _at_least(1),
    "retrain_max_auc_drop": _between(0, 1),
    "retrain_min_new_labels": _at_least(0),
    "retrain_min_fresh_labels": _at_least(0),
    "retrain_cooldown_days": _at_least(0),
    "ab_traffic_split": _between(0, 1, lo_open=True, hi_open=True),
    "ab_offer_share": _between(0, 1, lo_open=True),
    "ab_offer_effect": _between(0, 1),
    "ab_window_days": _at_least(1),
    "ab_max_days": _at_least(1),
    "ab_mde_relative": _between(0, 1, lo_open=True),
    "ab_seed": _at_least(0),
    "redis_url": _redis_url,
    "as_of": lambda v: None if v in ("", None) else _iso_date(v),
}


def validate(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The effective parameters (defaults + overrides), each value and the combinations checked.

    Raises:
        ParameterError: naming every problem found, one per line.
    """
    overrides = dict(overrides or {})
    for name in overrides:
        check_name(name, list(defaults))
    params: dict[str, Any] = {}
    problems: list[str] = []
    for name, default in defaults.items():
        try:
            value = coerce(name, overrides[name], default) if name in overrides else default
        except ParameterError as exc:
            problems.append(str(exc))
            continue
        rule = RULES.get(name)
        reason = rule(value) if rule is not None and value is not None else None
        if reason:
            problems.append(f"{name}={value!r} {reason}")
        params[name] = value
    if not problems:
        problems = combination_problems(params)
    if problems:
        raise ParameterError("\n".join(problems))
    return params


# -- combinations -----------------------------------------------------------------------------------
def combination_problems(p: Mapping[str, Any]) -> list[str]:
    """Reasons why the parameters cannot work together (empty when they can)."""
    problems = []
    for lo, hi in (("churn_rate_min", "churn_rate_max"), ("label_rate_min", "label_rate_max")):
        if lo in p and hi in p and p[lo] >= p[hi]:
            problems.append(f"{lo}={p[lo]} must be below {hi}={p[hi]}")
    if {"start", "end"} <= p.keys():
        start, end = date.fromisoformat(str(p["start"])), date.fromisoformat(str(p["end"]))
        if (end - start).days <= 30:
            problems.append(f"end={end} must be more than 30 days after start={start}")
            return problems
        problems += _snapshot_problems(p, start, end)
        problems += _as_of_problems(p, start, end)
    return problems


def _as_of_problems(p: Mapping[str, Any], start: date, end: date) -> list[str]:
    """A run date the synthetic world cannot answer: at/before its start, past its end (own data:
    the load checks the date against the files, :func:`churn.data.append.append_files`)."""
    if p.get("source", "synthetic") != "synthetic" or p.get("as_of") in ("", None) or not _synthetic_dataset(p):
        return []
    from churn.data.world import WORLD_DAYS  # the world's horizon past `end`

    as_of, last = date.fromisoformat(str(p["as_of"])), end + timedelta(days=WORLD_DAYS)
    if as_of <= start:
        return [f"as_of={as_of} is before the data: the synthetic world starts on start={start}"]
    if as_of > last:
        return [f"as_of={as_of} is beyond the data: the synthetic world ends on {last} (end + {WORLD_DAYS} days)"]
    return []


def _synthetic_dataset(p: Mapping[str, Any]) -> bool:
    """Whether the ``dataset`` file (default: the synthetic one) describes the simulator's data."""
    if p.get("dataset") in ("", None):
        return True
    from churn.dataset import DatasetError, load_dataset

    try:
        return load_dataset(str(p["dataset"])).source == "synthetic"
    except DatasetError:
        return True  # generate-data names the broken file; the synthetic checks still apply


def _snapshot_problems(p: Mapping[str, Any], start: date, end: date) -> list[str]:
    """Snapshots that fit the data, enough of them for the temporal split, enough churners."""
    from churn.features import SnapshotError, snapshot_dates, split_snapshots

    keys = {"n_snapshots", "horizon_days", "n_valid_snapshots"}
    if not keys <= p.keys():
        return []
    n, horizon, n_valid = p["n_snapshots"], p["horizon_days"], p["n_valid_snapshots"]
    try:
        snapshots = snapshot_dates(str(start), str(end), n_snapshots=n, horizon_days=horizon)
    except SnapshotError as exc:
        return [f"n_snapshots={n} with horizon_days={horizon} between {start} and {end}: {exc}"]
    n_train = len(split_snapshots(snapshots, n_valid, horizon)[0])
    if n_valid >= n or n_train < MIN_TRAIN_SNAPSHOTS:
        return [
            f"n_snapshots={n} leaves {n_train} training snapshot(s) after the {n_valid} validation "
            f"snapshot(s) and the {horizon}-day purge: training needs at least {MIN_TRAIN_SNAPSHOTS} "
            f"(use n_snapshots >= {n_valid + MIN_TRAIN_SNAPSHOTS} or fewer n_valid_snapshots)"
        ]
    if p.get("source", "synthetic") == "synthetic" and {"n_users", "churn_rate"} <= p.keys():
        return _churner_problems(p, (end - start).days)
    return []


def expected_valid_churners(n_users: int, churn_rate: float, horizon_days: int, n_valid: int, span_days: int) -> float:
    """Churners expected in the validation snapshots: users x yearly-ish churn share spread over
    the data span, times the horizon, times the number of validation snapshots."""
    return n_users * churn_rate * horizon_days / span_days * n_valid


def _churner_problems(p: Mapping[str, Any], span_days: int) -> list[str]:
    n_users, rate, horizon, n_valid = p["n_users"], p["churn_rate"], p["horizon_days"], p["n_valid_snapshots"]
    expected = expected_valid_churners(n_users, rate, horizon, n_valid, span_days)
    if expected >= MIN_EXPECTED_VALID_CHURNERS:
        return []
    per_user = expected / n_users
    need = math.ceil(MIN_EXPECTED_VALID_CHURNERS / per_user)
    return [
        f"n_users={n_users} is too few for n_snapshots={p['n_snapshots']}, horizon_days={horizon}, "
        f"n_valid_snapshots={n_valid} and churn_rate={rate}: about {expected:.1f} churners are expected "
        f"in the validation snapshots, at least {MIN_EXPECTED_VALID_CHURNERS:g} are needed to validate a "
        f"model (use n_users >= {need})"
    ]
