"""``suggest``: branch choice by complexity and scheduler, the base algo inside the branch."""

from __future__ import annotations

import functools
import importlib
from collections import Counter

import numpy as np
import pytest
from hwaware_hyperopt import MISC_KEY, _docs, suggest
from hwaware_hyperopt._suggest import warmup_pick, warmup_quotas
from hyperopt import Trials, fmin, hp, rand, tpe
from hyperopt.fmin import generate_trials_to_calculate

from hwaware_plugins.errors import ConfigError

# Three top-level branches of very different complexity.
SPACE = hp.choice("model", [
    {"x": hp.uniform("x0", 0, 1)},
    {"a": hp.uniform("a", 0, 1), "b": hp.loguniform("b", -5, 5), "c": hp.randint("c", 50)},
    {"p": hp.uniform("p", 0, 1), "q": hp.loguniform("q", -10, 10), "r": hp.randint("r", 100),
     "s": hp.normal("s", 0, 1), "t": hp.uniform("t", 0, 1), "u": hp.qloguniform("u", 0, 8, 1)},
])


def _counts(trials: Trials) -> Counter[str]:
    return Counter(t["misc"][MISC_KEY]["subspace"] for t in trials.trials)


@pytest.mark.parametrize("scheduler", ["fcfs", "hwaware"])
def test_every_branch_sampled_and_complex_ones_get_more(
    scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every trial lasts the same (the hwaware scheduler weighs runtimes, and the
    # measured ones of an instant objective are clock noise that changes its draws).
    monkeypatch.setattr(_docs, "_runtime", lambda doc, info: 0.01)
    trials = Trials()
    algo = functools.partial(suggest, scheduler=scheduler, base_algo=rand.suggest)
    fmin(lambda p: 1.0, SPACE, algo=algo, max_evals=90, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    counts = _counts(trials)
    assert set(counts) == {"model=0", "model=1", "model=2"}
    assert counts["model=2"] == max(counts.values())
    assert counts["model=2"] > counts["model=0"]
    if scheduler == "fcfs":  # without the scheduler's own preferences, complexity orders all
        assert counts["model=2"] > counts["model=1"] > counts["model=0"]


def test_tpe_inside_branch_keeps_documents_consistent() -> None:
    trials = Trials()
    best = fmin(lambda p: (p["x"] - 0.3) ** 2 if "x" in p else 1.0,
                hp.choice("m", [{"x": hp.uniform("x", 0, 1)}, {"y": hp.uniform("y", 0, 1)}]),
                algo=suggest, max_evals=40, trials=trials, rstate=np.random.default_rng(1),
                show_progressbar=False)
    for t in trials.trials:
        vals = t["misc"]["vals"]
        branch = t["misc"][MISC_KEY]["subspace"]
        assert branch == f"m={vals['m'][0]}"
        assert (len(vals["x"]) == 1) == (vals["m"][0] == 0)
    assert best["m"] == 0 and abs(best["x"] - 0.3) < 0.2


@pytest.mark.parametrize("constant", [None, 1, "off"])
def test_a_constant_option_is_a_branch_like_any_other(constant: object) -> None:
    trials = Trials()
    space = hp.choice("reg", [constant, {"l2": hp.loguniform("l2", -5, 0)}])
    best = fmin(lambda p: 0.5 if p == constant else p["l2"], space, algo=suggest, max_evals=12,
                trials=trials, rstate=np.random.default_rng(1), show_progressbar=False)
    assert len(_counts(trials)) == 2  # both options tried (a string option names its key)
    assert best["reg"] == 1


def test_numpy_scalars_in_existing_documents() -> None:
    points = [{"m": np.int64(0), "x": np.float64(0.5)}, {"m": np.int64(1), "y": np.float64(0.1)}]
    trials = generate_trials_to_calculate(points)
    space = hp.choice("m", [{"x": hp.uniform("x", 0, 1)}, {"y": hp.uniform("y", 0, 1)}])
    fmin(lambda p: 0.5, space, algo=suggest, max_evals=10, trials=trials,
         rstate=np.random.default_rng(2), show_progressbar=False)
    assert len(trials.trials) >= 10 and all(t["result"]["status"] == "ok" for t in trials.trials)
    assert {t["misc"][MISC_KEY]["subspace"] for t in trials.trials[2:]} <= {"m=0", "m=1"}


def test_bad_options_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="scheduler"):
        fmin(lambda p: 0.0, SPACE, algo=functools.partial(suggest, scheduler=3), max_evals=1,
             trials=Trials(), show_progressbar=False)
    with pytest.raises(ConfigError, match="warmup"):
        fmin(lambda p: 0.0, SPACE, algo=functools.partial(suggest, warmup=-1), max_evals=1,
             trials=Trials(), show_progressbar=False)


def test_warmup_helpers() -> None:
    assert warmup_quotas([0.0, 2.3, 10.1], 1.0) == [1, 3, 11]
    assert warmup_pick([1, 3, 11], [1, 3, 11], 0.5) is None
    assert warmup_pick([1, 0, 11], [1, 3, 11], 0.99) == 1


NESTED = hp.choice("model", [
    {"x": hp.uniform("xa", -1, 1),
     "k": hp.choice("k", [{"q": hp.uniform("q", 0, 1)}, {"r": hp.randint("r", 5)}])},
    {"x": hp.uniform("xb", -1, 1), "act": hp.choice("act", ["relu", "tanh"])},
])


@pytest.mark.parametrize("base", ["atpe", "anneal", "tpe"])
def test_base_algorithms_sample_inside_the_forced_branch(base: str) -> None:
    module = importlib.import_module(f"hyperopt.{base}")
    trials = Trials()
    fmin(lambda p: (p["x"] - 0.3) ** 2, NESTED, max_evals=12, trials=trials,
         algo=functools.partial(suggest, base_algo=module.suggest),
         rstate=np.random.default_rng(4), show_progressbar=False)
    assert len(trials.trials) == 12 and set(_counts(trials)) == {
        "model=0/k=0", "model=0/k=1", "model=1"}
    active = {"model=0/k=0": {"model", "xa", "k", "q"}, "model=0/k=1": {"model", "xa", "k", "r"},
              "model=1": {"model", "xb", "act"}}
    for t in trials.trials:
        vals, key = t["misc"]["vals"], t["misc"][MISC_KEY]["subspace"]
        assert set(vals) == {"model", "xa", "xb", "k", "q", "r", "act"}
        assert {label for label, v in vals.items() if v} == active[key]
        assert key.startswith(f"model={vals['model'][0]}")
        assert all(t["misc"]["idxs"][label] == [t["tid"]] for label in active[key])


@pytest.mark.parametrize("bad", ["tpe", tpe, 3])
def test_a_base_algo_that_is_not_a_function_is_named(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^base_algo must be a hyperopt algorithm function, "
                       r"got .*; pass (tpe\.suggest|an algorithm function such as tpe\.suggest) "):
        fmin(lambda p: 0.0, SPACE, algo=functools.partial(suggest, base_algo=bad), max_evals=1,
             trials=Trials(), show_progressbar=False)


class _Wayward:
    name = "wayward"

    def setup(self, subspaces: object, device_classes: object) -> None:
        pass

    def choose(self, device_class: str, history: object) -> object:
        return "model=nowhere"


def test_a_scheduler_choosing_an_unknown_subspace_is_named() -> None:
    from hwaware_plugins.errors import PluginError

    algo = functools.partial(suggest, scheduler=_Wayward(), warmup=0.0)
    with pytest.raises(PluginError, match=r"scheduler 'wayward' chose 'model=nowhere', which is "
                       r"not one of the subspaces it was given \(model=0, model=1, model=2\)"):
        fmin(lambda p: 1.0, SPACE, algo=algo, max_evals=8, trials=Trials(),
             rstate=np.random.default_rng(0), show_progressbar=False)
