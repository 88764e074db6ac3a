"""One source of configuration: no library default disagrees with env.yaml.

env.yaml holds every pipeline parameter's default. A library function or parameter class that
takes the same setting (under its env.yaml name or the name the library gives it) either has no
default, or a ``None`` meaning "not given", or (a value object mirroring env.yaml) exactly
env.yaml's value. ``model_name`` has no default outside the API's settings object. Read from the
source with ``ast``, so nothing is imported and every module counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "churn"
ENV = yaml.safe_load((ROOT / "env.yaml").read_text())

# env.yaml key -> the library's names for the same setting, and where (a path prefix under
# src/churn) a name means it. "alpha" is the drift tests' family-wise error only in monitoring/;
# elsewhere it is a statistic's own level. "seed" is the simulator's or the A/B traffic's seed.
NAMES: dict[str, tuple[tuple[str, ...], str]] = {
    "model_name": (("model_name",), ""),
    "scenario": (("scenario",), ""),
    "n_users": (("n_users",), "data/synthetic.py"),
    "seed": (("seed",), "data/synthetic.py"),
    "start": (("start",), "data/synthetic.py"),
    "end": (("end",), "data/synthetic.py"),
    "churn_rate": (("churn_rate", "target_churn_rate"), ""),
    "churn_rate_min": (("churn_rate_min",), ""),
    "churn_rate_max": (("churn_rate_max",), "quality/"),
    "n_snapshots": (("n_snapshots",), ""),
    "horizon_days": (("horizon_days",), ""),
    "label_rate_min": (("label_rate_min",), ""),
    "label_rate_max": (("label_rate_max",), ""),
    "n_valid_snapshots": (("n_valid_snapshots",), ""),
    "online_ttl_seconds": (("online_ttl_seconds", "ttl_seconds"), ""),
    "drift_alpha": (("drift_alpha", "alpha"), "monitoring/"),
    "drift_expected": (("drift_expected", "expected_drift"), ""),
    "alert_auc_min": (("alert_auc_min", "auc_min"), ""),
    "alert_churn_rate_max": (("alert_churn_rate_max",), ""),
    "retrain_min_drifted": (("retrain_min_drifted", "min_drifted"), ""),
    "retrain_max_auc_drop": (("retrain_max_auc_drop", "max_auc_drop"), ""),
    "retrain_min_new_labels": (("retrain_min_new_labels", "min_new_labels"), ""),
    "retrain_min_fresh_labels": (("retrain_min_fresh_labels", "min_fresh_labels"), ""),
    "retrain_cooldown_days": (("retrain_cooldown_days", "cooldown_days"), ""),
    "ab_traffic_split": (("ab_traffic_split", "traffic_split"), ""),
    "ab_offer_share": (("ab_offer_share", "offer_share"), ""),
    "ab_offer_effect": (("ab_offer_effect", "offer_effect"), ""),
    "ab_window_days": (("ab_window_days", "window_days"), "abtest/"),
    "ab_max_days": (("ab_max_days", "max_days"), "abtest/"),
    "ab_mde_relative": (("ab_mde_relative", "mde_relative"), ""),
    "ab_seed": (("ab_seed", "seed"), "abtest/phase.py"),  # bayes.py's seed draws posterior samples
}
# The example data sets' generators: each is configured by its own dataset file, not env.yaml.
EXEMPT = ("data/examples.py",)
# The API's settings object is the API's (and the dashboards') one configuration source.
MODEL_NAME_DEFAULT_ALLOWED = ("serving/settings.py",)
NOT_A_LITERAL = object()


class Default(NamedTuple):
    path: str  # under src/churn
    line: int
    owner: str  # function or class
    name: str
    value: Any  # a literal, or NOT_A_LITERAL


def defaults_in(source: str, path: str) -> Iterator[Default]:
    """Every parameter default and annotated class-field default in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            for arg, value in pairs:
                yield Default(path, value.lineno, node.name, arg.arg, _literal(value))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None:
                    yield Default(path, item.lineno, node.name, item.target.id, _literal(item.value))


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "date":  # date(2025, 1, 1)
        return "-".join(f"{int(ast.literal_eval(a)):02d}" for a in node.args)
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Field" and node.args:
        return _literal(node.args[0])  # pydantic Field(default, ...)
    try:
        return ast.literal_eval(node)
    except ValueError:
        return NOT_A_LITERAL


def _same(value: Any, env_value: Any) -> bool:
    if isinstance(env_value, list | tuple) and isinstance(value, list | tuple):
        return list(value) == list(env_value)
    return str(value) == str(env_value) if isinstance(env_value, str) else value == env_value


def problems(found: Iterator[Default], env: dict[str, Any]) -> list[str]:
    """The defaults that shadow env.yaml: a different value, or a model name at all."""
    out = []
    for d in found:
        if d.path.startswith(EXEMPT) or d.value is None:
            continue
        for key, (names, where) in NAMES.items():
            if d.name not in names or not d.path.startswith(where):
                continue
            where_at = f"{d.path}:{d.line} {d.owner}({d.name}=...)"
            if key == "model_name" and not d.path.startswith(MODEL_NAME_DEFAULT_ALLOWED):
                out.append(f"{where_at}: model_name has a default ({d.value!r}); make it a required argument")
            elif d.value is NOT_A_LITERAL or not _same(d.value, env[key]):
                shown = "an expression" if d.value is NOT_A_LITERAL else repr(d.value)
                out.append(f"{where_at}: default {shown} but env.yaml {key}: {env[key]!r}; make it required")
    return out


def library_defaults() -> Iterator[Default]:
    for file in sorted(SRC.rglob("*.py")):
        yield from defaults_in(file.read_text(), file.relative_to(SRC).as_posix())


def test_no_library_default_disagrees_with_env_yaml():
    """Every default of a setting env.yaml holds is absent, None or env.yaml's own value."""
    assert problems(library_defaults(), ENV) == []


def test_every_mapped_name_is_an_env_yaml_parameter():
    """The table above names real parameters (a renamed key would silently drop its check)."""
    assert set(NAMES) <= set(ENV)


def test_the_check_finds_a_shadowing_default():
    """The scan catches the kinds of default it exists for (so the test above can fail)."""
    source = (
        "from datetime import date\n"
        "def decide(*, min_new_labels: int = 2000, cooldown_days: int = 14, as_of=None): ...\n"
        "class Manager:\n"
        "    def __init__(self, model_name: str = 'churn_model'): ...\n"
        "class Params:\n"
        "    scenario: str = 'stable'\n"
        "    start: date = date(2025, 2, 1)\n"
    )
    found = problems(defaults_in(source, "monitoring/x.py"), ENV)
    assert len(found) == 3 and all("make it" in f for f in found)
    assert any("min_new_labels" in f and "1500" in f for f in found)
    assert any("model_name has a default" in f for f in found)
    assert any("scenario" in f and "'drift'" in f for f in found)
    dates = problems(defaults_in(source, "data/synthetic.py"), ENV)
    assert any("start=" in f and "2025-02-01" in f for f in dates)
