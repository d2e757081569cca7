"""The reward contract and the weighted composition of rewards.

Contract (as TRL's): a reward is any callable ``reward(completions: list[str], **columns) -> list[float | None]``
where ``columns`` holds every annotation column of the batch (``id``, ``question``, ``answer``,
``problem_type``, ``options``, ``temporal_grounding``, … — see :mod:`lit_videor2.data.records`), one entry per
completion. ``None`` means "does not apply to this sample". Unknown columns must be accepted (``**columns``).

A reward is either an instance of a :class:`Reward` subclass (configured in YAML with ``class_path`` /
``init_args``) or a plain function given by its dotted path (``my_pkg.rewards.length_penalty``).
:class:`RewardComposition` sums the weighted components NaN/None-safely and returns every component for logging.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from lit_videor2.errors import UserError


class RewardError(UserError, RuntimeError):
    """A reward raised or returned a non-finite value (under ``on_error="raise"``): the message names the reward and
    the sample; the command line prints it as one line."""


__all__ = [
    "RewardError",
    "Reward",
    "RewardFn",
    "RewardComposition",
    "RewardOutput",
    "component_stats",
    "resolve_reward",
]

RewardFn = Callable[..., Sequence[float | None]]
"""Type of a plain reward function: ``(completions, **columns) -> list[float | None]``."""


class Reward:
    """Base class of configurable rewards. Subclasses implement :meth:`__call__`.

    Subclassing is optional (any callable honouring the contract works); it gives a class that LightningCLI can
    build from ``class_path``/``init_args`` and a default :attr:`name`.
    """

    name: str = "reward"
    """Default name of the component in logs."""

    def __call__(self, completions: list[str], **columns: Any) -> list[float | None]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(completions, **columns)")


def resolve_reward(reward: Reward | RewardFn | str) -> RewardFn:
    """A reward callable from an instance, a function, or a dotted path ``"package.module.function"``."""
    if isinstance(reward, str):
        module_name, _, attr = reward.rpartition(".")
        if not module_name:
            raise ValueError(f"reward {reward!r} is not a dotted path 'package.module.function'")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot import reward {reward!r}: {err}") from err
        reward = obj() if isinstance(obj, type) else obj
    if not callable(reward):
        raise TypeError(f"reward {reward!r} is not callable")
    return reward


class RewardOutput(NamedTuple):
    """Rewards of one batch: the weighted ``total`` per completion and each component's raw values."""

    total: list[float]
    components: dict[str, list[float | None]]


def component_stats(
    components: Mapping[str, Sequence[float | None]], prefix: str = "train/rewards/"
) -> dict[str, float]:
    """What GRPO logs per reward: ``{prefix}{name}_mean`` and ``{prefix}{name}_std`` (sample standard deviation;
    0 for a single value) over the samples the reward applies to (None and NaN left out). A reward that applied
    to no sample is left out of the dict rather than logged as NaN."""
    out: dict[str, float] = {}
    for name, values in components.items():
        vals = [float(v) for v in values if _usable(v)]
        if not vals:
            continue
        mean = sum(vals) / len(vals)
        var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
        out[f"{prefix}{name}_mean"] = mean
        out[f"{prefix}{name}_std"] = math.sqrt(var)
    return out


def _usable(value: float | None) -> bool:
    return value is not None and not math.isnan(float(value))


class RewardComposition:
    """Weighted sum of named rewards (reference: every weight 1.0).

    Args:
        rewards: name -> reward; an instance (``class_path``/``init_args`` in YAML), a callable, or a dotted path
            string to a function. Order is kept for logging.
        weights: name -> weight; missing names weigh 1.0. A name not in ``rewards`` is an error.
        on_error: ``"raise"`` (default): a reward that raises stops training with an error naming the reward and
            the sample id. ``"zero"``: the failing batch of that reward scores 0.0 and a warning with the running
            count of failures is issued (:attr:`error_counts`).

    ``None`` and NaN components are left out of a sample's total; a sample to which no component applies totals
    NaN (TRL's semantics: it stays out of its group's statistics and gets advantage 0). An infinite value is an
    error naming the reward and the sample (under ``on_error="zero"``: counted, warned and scored 0.0, like a
    reward that raised).
    """

    def __init__(
        self,
        rewards: Mapping[str, Reward | RewardFn | str],
        weights: Mapping[str, float] | None = None,
        on_error: Literal["raise", "zero"] = "raise",
    ) -> None:
        if not rewards:
            raise ValueError("RewardComposition needs at least one reward")
        unknown = set(weights or {}) - set(rewards)
        if unknown:
            raise ValueError(f"weights given for unknown rewards {sorted(unknown)}; rewards are {list(rewards)}")
        if on_error not in ("raise", "zero"):
            raise ValueError(f"on_error must be 'raise' or 'zero', got {on_error!r}")
        self.rewards: dict[str, RewardFn] = {name: resolve_reward(r) for name, r in rewards.items()}
        self.weights: dict[str, float] = {name: float((weights or {}).get(name, 1.0)) for name in rewards}
        self.on_error = on_error
        self.error_counts: dict[str, int] = {name: 0 for name in rewards}

    @property
    def names(self) -> list[str]:
        """Component names, in order."""
        return list(self.rewards)

    def __call__(self, completions: list[str], **columns: Any) -> RewardOutput:
        n = len(completions)
        components = {name: self._run(name, fn, completions, columns, n) for name, fn in self.rewards.items()}
        total = []
        for i in range(n):
            parts = [self.weights[name] * float(vals[i]) for name, vals in components.items() if _usable(vals[i])]
            total.append(sum(parts) if parts else math.nan)
        return RewardOutput(total, components)

    def _run(self, name: str, fn: RewardFn, completions: list[str], columns: dict[str, Any], n: int) -> list:
        try:
            values = list(fn(completions, **columns))
            if len(values) != n:
                raise ValueError(f"returned {len(values)} values for {n} completions")
            values = [None if v is None else float(v) for v in values]
        except Exception as err:
            ids = columns.get("id")
            sample = _failing_sample(fn, completions, columns, n) if self.on_error == "raise" else None
            where = f"sample id {ids[sample]!r}" if ids is not None and sample is not None else f"sample ids {ids}"
            if self.on_error == "raise":
                raise RewardError(f"reward {name!r} raised on {where}: {type(err).__name__}: {err}") from err
            self.error_counts[name] += 1
            warnings.warn(
                f"reward {name!r} raised on {where} ({type(err).__name__}: {err}); scored 0.0 "
                f"(failure {self.error_counts[name]} of this reward)",
                RuntimeWarning,
                stacklevel=2,
            )
            return [0.0] * n
        return self._check_finite(name, values, columns)

    def _check_finite(self, name: str, values: list[float | None], columns: dict[str, Any]) -> list[float | None]:
        """Refuse ±inf (it would reach the loss as NaN); under ``on_error="zero"`` count it and score 0.0."""
        bad = [i for i, v in enumerate(values) if v is not None and math.isinf(v)]
        if not bad:
            return values
        ids = columns.get("id")
        where = ", ".join(f"sample id {ids[i]!r}" if ids is not None else f"sample {i}" for i in bad)
        if self.on_error == "raise":
            raise RewardError(
                f"reward {name!r} returned {values[bad[0]]} on {where}: rewards must be finite (None means "
                "'does not apply'). Fix the reward, or set on_error: zero to score such samples 0.0."
            )
        self.error_counts[name] += len(bad)
        warnings.warn(
            f"reward {name!r} returned a non-finite value on {where}; scored 0.0 "
            f"(failure {self.error_counts[name]} of this reward)",
            RuntimeWarning,
            stacklevel=3,
        )
        return [0.0 if i in bad else v for i, v in enumerate(values)]


def _failing_sample(fn: RewardFn, completions: list[str], columns: dict[str, Any], n: int) -> int | None:
    """Index of the first sample on which ``fn`` raises when called alone (to name it in the error)."""
    for i in range(n):
        try:
            fn(completions[i : i + 1], **{k: _row(v, i, n) for k, v in columns.items()})
        except Exception:
            return i
    return None


def _row(value: Any, i: int, n: int) -> Any:
    return value[i : i + 1] if isinstance(value, (list, tuple)) and len(value) == n else value
