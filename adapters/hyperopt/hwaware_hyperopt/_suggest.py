"""``suggest``: a hyperopt ``algo`` that picks the branch by scheduler, then delegates."""

from __future__ import annotations

import math
import random
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hyperopt import base, pyll

from hwaware_hyperopt._branches import Branching, branching
from hwaware_hyperopt._docs import ANY_CLASS, MISC_KEY, history_record
from hwaware_hyperopt._pyll import fix_branches, fixed_choices_doc
from hwaware_plugins._forksafe import fork_safe
from hwaware_plugins.errors import ConfigError, PluginError
from hwaware_plugins.scheduling import DeviceClassInfo, History
from hwaware_plugins.space import subspace_infos

Algo = Callable[[Sequence[int], base.Domain, base.Trials, int], list[dict[str, Any]]]


@dataclass
class _State:
    """What one (domain, options) pair keeps between calls."""

    branching: Branching
    scheduler: Any
    classes: tuple[DeviceClassInfo, ...] = ()
    history: History = field(default_factory=History)
    recorded: set[Any] = field(default_factory=set)
    keys: dict[Any, str | None] = field(default_factory=dict)
    domains: dict[str, base.Domain] = field(default_factory=dict)
    quotas: list[int] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)


_states: weakref.WeakKeyDictionary[base.Domain, dict[tuple[Any, ...], _State]] = (
    weakref.WeakKeyDictionary()
)
_lock = fork_safe(threading.Lock())


def warmup_quotas(complexities: Sequence[float], per_unit: float) -> list[int]:
    """Warm-up trials per subspace: ``ceil(per_unit * complexity)``, at least 1.

    A larger subspace needs more random start-up points before a model of it
    (TPE's, the scheduler's) means anything, so warm-up grows with complexity
    (under the ``hwaware`` rule about 2.3 per continuous dimension). Pure; O(S).
    """
    return [max(1, math.ceil(per_unit * max(0.0, c))) for c in complexities]


def warmup_pick(counts: Sequence[int], quotas: Sequence[int], u: float) -> int | None:
    """The subspace to warm up next, drawn in proportion to its missing trials.

    ``u`` is a uniform draw in [0, 1). ``None`` once every quota is met. Pure; O(S).
    """
    missing = [max(0, q - c) for c, q in zip(counts, quotas, strict=True)]
    total = sum(missing)
    if total == 0:
        return None
    target, acc = u * total, 0
    for index, gap in enumerate(missing):
        acc += gap
        if target < acc:
            return index
    return max(range(len(missing)), key=missing.__getitem__)


def _build_scheduler(scheduler: Any, seed: int) -> Any:
    if isinstance(scheduler, str):
        from hwaware_plugins import load

        return load("scheduler", scheduler, framework="hyperopt", seed=int(seed))
    if callable(getattr(scheduler, "choose", None)) and callable(
        getattr(scheduler, "setup", None)
    ):
        return scheduler
    raise ConfigError(
        f"scheduler must be a registered scheduler name or an object with setup() and "
        f"choose(), got {type(scheduler).__name__}; try scheduler='hwaware'"
    )


def _state(
    domain: base.Domain, trials: base.Trials, seed: int, scheduler: Any, complexity: Any,
    max_subspaces: int, warmup: float,
) -> _State:
    key = (scheduler if isinstance(scheduler, str) else id(scheduler), complexity if isinstance(
        complexity, str) else id(complexity), max_subspaces, warmup, id(trials))
    with _lock:
        per_domain = _states.setdefault(domain, {})
        state = per_domain.get(key)
        if state is None:
            state = _State(branching(domain.expr, max_subspaces=max_subspaces),
                           _build_scheduler(scheduler, seed), rng=random.Random(int(seed)))
            per_domain[key] = state
    classes = tuple(getattr(trials, "hwaware_device_classes", None) or (
        DeviceClassInfo(ANY_CLASS),))
    if classes != state.classes:
        family = {s.key: next(iter(s.branches.values()), None) for s in
                  state.branching.subspaces}
        infos = subspace_infos(state.branching.subspaces, rule=complexity,
                               family_of=lambda s: family.get(s.key))
        state.scheduler.setup(infos, classes)
        state.classes = classes
        state.quotas = warmup_quotas([i.complexity for i in infos], warmup)
    return state


def _all_docs(trials: base.Trials) -> list[dict[str, Any]]:
    docs = getattr(trials, "_dynamic_trials", None)
    return list(docs) if docs is not None else list(trials.trials)


def _key_of(state: _State, doc: dict[str, Any]) -> str | None:
    tid = doc.get("tid")
    if tid not in state.keys:
        info = (doc.get("misc") or {}).get(MISC_KEY) or {}
        known = info.get("subspace")
        key = known if known in state.branching.indices else state.branching.subspace_of(
            (doc.get("misc") or {}).get("vals") or {})
        state.keys[tid] = key
    return state.keys[tid]


def _update_history(state: _State, docs: list[dict[str, Any]]) -> None:
    if len(state.recorded) > len(docs):  # documents were deleted: start again
        state.history, state.recorded, state.keys = History(), set(), {}
    for doc in docs:
        tid = doc.get("tid")
        if tid in state.recorded:
            continue
        key = _key_of(state, doc)
        record = None if key is None else history_record(doc, key)
        if record is not None:
            state.history.record(**record)
            state.recorded.add(tid)


def _branch_trials(trials: base.Trials, state: _State, key: str) -> base.Trials:
    view = base.Trials(exp_key=getattr(trials, "_exp_key", None), refresh=False)
    view._insert_trial_docs([d for d in trials.trials if _key_of(state, d) == key])
    view.refresh()
    return view


def _branch_domain(domain: base.Domain, state: _State, key: str) -> base.Domain:
    fixed = state.domains.get(key)
    if fixed is None:
        expr = fix_branches(domain.expr, state.branching.indices[key],
                            state.branching.info.switches)
        if isinstance(expr, pyll.Literal):
            # A constant option (hp.choice("reg", [None, {...}])): hyperopt's Domain cannot
            # hold a bare literal; this copy is only sampled, so a list of it will do.
            expr = pyll.as_apply([expr])
        fixed = base.Domain(domain.fn, expr, workdir=domain.workdir,
                            pass_expr_memo_ctrl=domain.pass_expr_memo_ctrl,
                            name=domain.name, loss_target=domain.loss_target)
        state.domains[key] = fixed
    return fixed


def _choose(state: _State, docs: list[dict[str, Any]], device_class: str) -> str:
    keys = state.branching.keys
    if len(keys) > 1:
        counts = dict.fromkeys(keys, 0)
        for doc in docs:  # proposed ones count too: warm-up is about sampling, not results
            key = _key_of(state, doc)
            if key in counts:
                counts[key] += 1
        pick = warmup_pick([counts[k] for k in keys], state.quotas, state.rng.random())
        if pick is not None:
            return keys[pick]
    chosen = state.scheduler.choose(device_class, state.history)
    if not isinstance(chosen, str) or chosen not in state.branching.indices:
        name = getattr(state.scheduler, "name", type(state.scheduler).__name__)
        raise PluginError(
            f"scheduler {name!r} chose {chosen!r}, which is not one of the subspaces it was "
            f"given ({', '.join(keys)})"
        )
    return chosen


def _bad_base_algo(base_algo: object) -> str:
    """The one-line error for a ``base_algo`` that is not an algorithm function."""
    name = base_algo if isinstance(base_algo, str) else getattr(base_algo, "__name__", "")
    short = str(name).rsplit(".", 1)[-1]
    if short in ("tpe", "rand", "anneal", "atpe", "mix"):
        hint = f"pass {short}.suggest (from hyperopt import {short})"
    else:
        hint = "pass an algorithm function such as tpe.suggest (from hyperopt import tpe)"
    what = repr(base_algo) if isinstance(base_algo, str) else (
        f"{type(base_algo).__name__} {name or repr(base_algo)}")
    return f"base_algo must be a hyperopt algorithm function, got {what.strip()}; {hint}"


def suggest(
    new_ids: Sequence[int],
    domain: base.Domain,
    trials: base.Trials,
    seed: int,
    *,
    base_algo: Algo | None = None,
    scheduler: Any = None,
    complexity: Any = "hwaware",
    max_subspaces: int = 512,
    warmup: float = 1.0,
) -> list[dict[str, Any]]:
    """Propose trials: the scheduler picks the branch, ``base_algo`` samples inside it.

    Use as ``fmin(..., algo=suggest)`` or, with options,
    ``functools.partial(suggest, base_algo=rand.suggest, scheduler="shadho")``.

    For each new trial, the subspaces of the space (each combination of
    ``hp.choice``/``hp.pchoice`` branches, see :mod:`hwaware_hyperopt._pyll`)
    are weighed by a scheduler fed with every finished trial: its subspace, the
    device class it ran on, runtime, loss and failures (read from the trial
    documents, so a pickled ``Trials`` resumes with the same view). The chosen
    subspace's switches are then fixed and ``base_algo`` runs on the trials of
    that subspace only, so TPE models each branch on its own history.
    Before the scheduler decides, each subspace gets a warm-up of
    ``ceil(warmup * complexity)`` trials (:func:`warmup_quotas`), drawn in
    proportion to what is missing: larger subspaces are explored more.
    ``hp.pchoice`` probabilities are not used: every option is a subspace like
    an ``hp.choice`` option, one of probability 0 included (leave such an
    option out of the space, or use ``tpe.suggest``).

    :param base_algo: the algorithm sampling inside the branch (default
        ``hyperopt.tpe.suggest``).
    :param scheduler: a registered scheduler name or a scheduler object;
        default: ``trials.scheduler`` for a
        :class:`~hwaware_hyperopt.HardwareAwareTrials`, else ``"hwaware"``.
    :param complexity: complexity rule name or object (``"hwaware"``, ``"shadho"``).
    :param max_subspaces: cap on the number of subspaces (past it, top-level branches only).
    :param warmup: warm-up trials per unit of complexity (0: one per subspace).

    With :class:`~hwaware_hyperopt.HardwareAwareTrials` the scheduler decides
    for the device class of the slot the trial will run on; with plain
    ``Trials`` every trial counts as device class ``"any"``.
    Each proposed document records the choice in ``misc["hwaware"]``.

    Cost: the space is read once per ``fmin`` call; each call then costs the
    scheduler's decision, O(new trials) history updates, one filter of the
    trial list and ``base_algo`` on the branch's trials.
    Thread-safety: calls for the same domain must not run concurrently (fmin
    never does that).
    """
    if isinstance(max_subspaces, bool) or not isinstance(max_subspaces, int) or max_subspaces < 1:
        raise ConfigError(f"max_subspaces must be an integer >= 1, got {max_subspaces!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int | float) or not warmup >= 0:
        raise ConfigError(f"warmup must be a number >= 0, got {warmup!r}")
    if base_algo is None:
        from hyperopt import tpe

        base_algo = tpe.suggest
    elif not callable(base_algo):
        raise ConfigError(_bad_base_algo(base_algo))
    if scheduler is None:
        scheduler = getattr(trials, "scheduler", None) or "hwaware"
    state = _state(domain, trials, seed, scheduler, complexity, max_subspaces, warmup)
    docs_now = _all_docs(trials)
    _update_history(state, docs_now)
    device_class = getattr(trials, "hwaware_next_device_class", None) or state.classes[0].name
    key = _choose(state, docs_now, device_class)
    if len(state.branching.subspaces) == 1:
        docs = base_algo(new_ids, domain, trials, seed)
    else:
        docs = base_algo(new_ids, _branch_domain(domain, state, key),
                         _branch_trials(trials, state, key), seed)
        labels, indices = list(domain.params), state.branching.indices[key]
        docs = [fixed_choices_doc(doc, labels, indices) for doc in docs]
    for doc in docs:
        doc["misc"][MISC_KEY] = {
            "subspace": key,
            "scheduler": getattr(state.scheduler, "name", type(state.scheduler).__name__),
            "device_class": device_class,
        }
        state.keys[doc["tid"]] = key
    return docs
