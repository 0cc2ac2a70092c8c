"""The one search space: ordered, frozen parameter specs that every engine samples from.

A :class:`SearchSpace` is a tuple of parameter specs. Each spec knows its own kind (int, float,
categorical or fixed) and may carry a :class:`Condition` on an earlier parameter, so that e.g.
the filters of conv block 3 exist only when there are at least 3 blocks. Engines never see the
specs directly: an adapter hands :meth:`SearchSpace.sample` one ``suggest`` function that asks
its library for one value, and the space walks its parameters in order, skipping inactive ones.
The result is a dict of plain Python values, identical for every engine given the same choices.

This module imports no ML framework.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import yaml

from hpo32.search.recipe import SCHEDULES, TTA_MODES

__all__ = [
    "AIRBENCH94_CONFIG",
    "MAXNET_CONFIG",
    "PLAIN_RECIPE",
    "RECIPE_PARAMS",
    "named_configs",
    "space_v1",
    "Categorical",
    "Condition",
    "Fixed",
    "Float",
    "Int",
    "Param",
    "SearchSpace",
    "SpaceError",
    "brief",
    "default_space",
]

Value = Union[int, float, str, bool]


class SpaceError(ValueError):
    """An invalid space definition; the message is one sentence naming the parameter."""


#: The longest spec or space file read (a spec is a few kilobytes; comments included).
MAX_FILE_BYTES = 1 << 20
#: A parameter's name: what Optuna, the tuners and the dashboards all take as a name.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}")
#: Ints beyond this lose precision where Optuna stores them as floats.
_MAX_INT = 2**53
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxdict, _BRIEF.maxlist, _BRIEF.maxtuple = 2, 4, 4, 4
_BRIEF.maxset, _BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlong = 4, 60, 60, 30


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)`` in at most ``limit`` characters, made without walking all of a large
    or nested value: how an error message quotes what a user wrote (one line, bounded)."""
    try:
        text = _BRIEF.repr(value)
    except Exception:  # a value whose repr fails is still named
        text = f"<{type(value).__name__}>"
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool) that is neither inf nor NaN and
    fits a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) <= _MAX_INT
    return math.isfinite(value)


def check_name(name: Any) -> str:
    """Raises SpaceError unless ``name`` is a legal parameter name (letters, digits, ``_``,
    ``.``, ``:``, ``-``; at most 100 characters)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise SpaceError(
            f"parameter name {brief(name)} is not allowed; use letters, digits, '_', '.', ':' "
            "and '-' (at most 100 characters)."
        )
    return name


@dataclass(frozen=True)
class Condition:
    """The parameter exists only when ``parent`` takes one of ``values`` or lies in [min, max].

    Args:
        parent: name of an earlier int or categorical parameter.
        values: allowed values of the parent, or None.
        min: the parent's smallest allowed value (ints), or None.
        max: the parent's largest allowed value (ints), or None.
    """

    parent: str
    values: tuple[Value, ...] | None = None
    min: float | None = None
    max: float | None = None

    def holds(self, parent_value: Any) -> bool:
        """Returns whether the condition is met by the parent's value."""
        if parent_value is None:
            return False
        if self.values is not None and parent_value not in self.values:
            return False
        if (self.min is not None or self.max is not None) and not _finite(parent_value):
            return False  # a string or boolean parent is never within bounds
        if self.min is not None and parent_value < self.min:
            return False
        if self.max is not None and parent_value > self.max:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"parent": self.parent}
        for key in ("values", "min", "max"):
            val = getattr(self, key)
            if val is not None:
                out[key] = list(val) if key == "values" else val
        return out


@dataclass(frozen=True)
class _Base:
    name: str
    condition: Condition | None = field(default=None, kw_only=True)
    #: The value :meth:`SearchSpace.defaults` takes (None: the midpoint or first choice).
    default: Any = field(default=None, kw_only=True)

    kind = "base"

    def validate(self) -> None:
        """Raises SpaceError when the spec is inconsistent."""

    def check_default(self) -> None:
        """Raises SpaceError when a given default is not a legal value."""
        if self.default is not None and not self.contains(self.default):
            raise SpaceError(
                f"parameter '{self.name}': default {brief(self.default)} is out of range."
            )

    def contains(self, value: Any) -> bool:
        """Returns whether ``value`` is a legal value of this parameter."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        for key, val in self.__dict__.items():
            if key in ("name", "condition") or val is None or val is False:
                continue
            out[key] = list(val) if isinstance(val, tuple) else val
        if self.condition is not None:
            out["when"] = self.condition.to_dict()
        return out


@dataclass(frozen=True)
class Int(_Base):
    """An integer in [low, high], optionally on a log scale or with a step."""

    low: int = 0
    high: int = 0
    step: int = 1
    log: bool = False

    kind = "int"

    def validate(self) -> None:
        for key in ("low", "high", "step"):
            if isinstance(getattr(self, key), bool) or not isinstance(getattr(self, key), int):
                raise SpaceError(f"parameter '{self.name}': {key} must be an integer.")
            if not _finite(getattr(self, key)):
                raise SpaceError(
                    f"parameter '{self.name}': {key} must lie between -2**53 and 2**53."
                )
        _check_log(self.name, self.log)
        _check_range(self.name, self.low, self.high, self.log)
        if self.step < 1:
            raise SpaceError(f"parameter '{self.name}': step must be at least 1.")
        if self.log and self.step != 1:
            raise SpaceError(f"parameter '{self.name}': log scale cannot be used with a step.")

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if out.get("step") == 1:
            del out["step"]
        return out


@dataclass(frozen=True)
class Float(_Base):
    """A float in [low, high], optionally on a log scale or with a step."""

    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False

    kind = "float"

    def validate(self) -> None:
        for key in ("low", "high"):
            if not _finite(getattr(self, key)):
                raise SpaceError(f"parameter '{self.name}': {key} must be a finite number.")
        _check_log(self.name, self.log)
        _check_range(self.name, self.low, self.high, self.log)
        if self.step is not None:
            if not _finite(self.step):
                raise SpaceError(f"parameter '{self.name}': step must be a finite number.")
            if self.step <= 0:
                raise SpaceError(f"parameter '{self.name}': step must be positive.")
            if self.log:
                raise SpaceError(f"parameter '{self.name}': log scale cannot be used with a step.")

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        eps = 1e-9 * max(1.0, abs(self.high))
        return self.low - eps <= value <= self.high + eps


@dataclass(frozen=True)
class Categorical(_Base):
    """One of a fixed list of choices (str, int, float or bool)."""

    choices: tuple[Value, ...] = ()

    kind = "categorical"

    def validate(self) -> None:
        if not isinstance(self.choices, tuple):
            raise SpaceError(f"parameter '{self.name}': choices must be a list.")
        if not self.choices:
            raise SpaceError(f"parameter '{self.name}': choices must not be empty.")
        for choice in self.choices:
            if not _scalar(choice):
                raise SpaceError(
                    f"parameter '{self.name}': choice {brief(choice)} must be a string, "
                    "finite number or boolean."
                )
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise SpaceError(f"parameter '{self.name}': choices must not repeat.")
        kinds = {type(c) for c in self.choices}
        if len(kinds) > 1 and not kinds <= {int, float}:
            raise SpaceError(f"parameter '{self.name}': choices must all be of one type.")

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices) or (
            not isinstance(value, bool) and value in self.choices
        )


@dataclass(frozen=True)
class Fixed(_Base):
    """A parameter pinned to one value: recorded in every config, never sampled."""

    value: Value = 0

    kind = "fixed"

    def validate(self) -> None:
        if not _scalar(self.value):
            raise SpaceError(
                f"parameter '{self.name}': a fixed value must be a string, finite number or "
                f"boolean, not {brief(self.value)}."
            )

    def contains(self, value: Any) -> bool:
        return value == self.value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "fixed", "value": self.value}
        if self.condition is not None:
            out["when"] = self.condition.to_dict()
        return out


Param = Union[Int, Float, Categorical, Fixed]
_KINDS: dict[str, type[Param]] = {
    "int": Int,
    "float": Float,
    "categorical": Categorical,
    "fixed": Fixed,
}


def _check_condition(name: str, cond: Condition) -> None:
    """Raises SpaceError unless ``cond`` names a parent, lists scalar values and bounds
    its parent by finite numbers."""
    if not isinstance(cond, Condition) or not isinstance(cond.parent, str):
        raise SpaceError(f"parameter '{name}': its condition needs a parent parameter's name.")
    check_name(cond.parent)
    if cond.values is not None and (
        not isinstance(cond.values, tuple) or not all(_scalar(v) for v in cond.values)
    ):
        raise SpaceError(
            f"parameter '{name}': the values of its condition must be strings, numbers or booleans."
        )
    for key in ("min", "max"):
        bound = getattr(cond, key)
        if bound is not None and not _finite(bound):
            raise SpaceError(
                f"parameter '{name}': {key} of its condition must be a finite number, not "
                f"{brief(bound)}."
            )


def _scalar(value: Any) -> bool:
    """Whether ``value`` may be a choice or fixed value: a string of at most 1,000
    characters, a boolean or a finite number."""
    if isinstance(value, str):
        return len(value) <= 1000
    return isinstance(value, bool) or _finite(value)


def _check_log(name: str, log: Any) -> None:
    if not isinstance(log, bool):
        raise SpaceError(f"parameter '{name}': log must be true or false, not {brief(log)}.")


def _check_range(name: str, low: float, high: float, log: bool) -> None:
    if low > high:
        raise SpaceError(f"parameter '{name}': low ({low}) is greater than high ({high}).")
    if log and low <= 0:
        raise SpaceError(f"parameter '{name}': a log scale needs low > 0, got {low}.")


class SearchSpace:
    """An ordered, frozen, validated collection of parameter specs.

    Args:
        params: the parameter specs, in sampling order; a condition may only refer to an
            earlier int, categorical or fixed parameter.

    Raises:
        SpaceError: a name is used twice, a spec is inconsistent or a condition is unsound.
    """

    def __init__(self, params: tuple[Param, ...] | list[Param]) -> None:
        self._params: tuple[Param, ...] = tuple(params)
        seen: dict[str, Param] = {}
        for param in self._params:
            if not isinstance(param, _Base):
                raise SpaceError(f"{brief(param)} is not a parameter spec.")
            check_name(param.name)
            if param.name in seen:
                raise SpaceError(f"parameter '{param.name}' is defined twice.")
            param.validate()
            param.check_default()
            cond = param.condition
            if cond is not None:
                _check_condition(param.name, cond)
                if cond.parent not in seen:
                    raise SpaceError(
                        f"parameter '{param.name}': its condition refers to unknown parameter "
                        f"'{cond.parent}' (it must be defined earlier)."
                    )
                if isinstance(seen[cond.parent], Float):
                    raise SpaceError(
                        f"parameter '{param.name}': its condition must be on an int or "
                        f"categorical parameter, not the float '{cond.parent}'."
                    )
                if cond.values is None and cond.min is None and cond.max is None:
                    raise SpaceError(
                        f"parameter '{param.name}': its condition needs values, min or max."
                    )
            seen[param.name] = param
        self._by_name = seen

    # -- access --------------------------------------------------------------------------
    @property
    def params(self) -> tuple[Param, ...]:
        """The parameter specs in sampling order."""
        return self._params

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._params)

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._params == other._params

    def __repr__(self) -> str:
        return f"SearchSpace({', '.join(self.names)})"

    # -- sampling ------------------------------------------------------------------------
    def active(self, param: Param, values: Mapping[str, Any]) -> bool:
        """Returns whether ``param`` exists given the values chosen so far."""
        cond = param.condition
        if cond is None:
            return True
        parent = self._by_name[cond.parent]
        return self.active(parent, values) and cond.holds(values.get(cond.parent))

    def sample(self, suggest: Callable[[Param, Mapping[str, Any]], Any]) -> dict[str, Value]:
        """Walks the parameters in order and asks ``suggest`` for each active one.

        Args:
            suggest: called as ``suggest(param, values_so_far)``; returns the chosen value.
                Fixed parameters are not passed to it.

        Returns:
            The config: a dict from name to plain Python value, active parameters only.
        """
        values: dict[str, Value] = {}
        for param in self._params:
            if not self.active(param, values):
                continue
            if isinstance(param, Fixed):
                values[param.name] = param.value
            else:
                values[param.name] = _plain(param, suggest(param, values))
        return values

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Raises SpaceError unless ``config`` holds exactly the active parameters, in range."""
        active = self.sample(lambda p, _v: config.get(p.name))
        for name in active:
            if name not in config:
                raise SpaceError(f"config is missing parameter '{name}'.")
            if not self[name].contains(config[name]):
                raise SpaceError(f"config value {brief(config[name])} of '{name}' is out of range.")
        extra = set(config) - set(active)
        if extra:
            raise SpaceError(f"config has parameters that are not active: {sorted(extra)}.")

    def defaults(self) -> dict[str, Value]:
        """A config from each parameter's ``default`` where it names one, else its midpoint
        (log midpoint on log scales; the first choice)."""
        return self.sample(lambda p, _v: _midpoint(p))

    def complete(self, partial: Mapping[str, Any]) -> dict[str, Value]:
        """A config with the values of ``partial`` and each other active parameter's default
        (as :meth:`defaults`): how a user writes "the defaults, but with batch norm".

        Raises:
            SpaceError: ``partial`` names a parameter the space lacks or that its own values
                leave inactive, or a value is out of range.
        """
        unknown = sorted(str(n) for n in set(partial) - set(self._by_name))
        if unknown:
            raise SpaceError(f"no parameter named {brief(unknown[0])} in the space.")
        config = self.sample(lambda p, _v: partial[p.name] if p.name in partial else _midpoint(p))
        for name, value in partial.items():
            if name not in config:
                raise SpaceError(f"parameter '{name}' is not active in this config.")
            int_for_float = isinstance(self[name], Float) and isinstance(value, int)
            same_type = type(config[name]) is type(value) or int_for_float
            if config[name] != value or not same_type:
                if isinstance(self[name], Fixed):
                    raise SpaceError(f"parameter '{name}' is fixed to {brief(config[name])}.")
                raise SpaceError(f"config value {brief(value)} of '{name}' is out of range.")
        self.check_config(config)
        return config

    def adopt(self, foreign: Mapping[str, Any]) -> dict[str, Value]:
        """A config of this space from one of another space (another study's best, say): the
        values this space holds and leaves active are kept, every other parameter takes its
        default (as :meth:`defaults`)."""
        return self.sample(
            lambda p, _v: (
                foreign[p.name]
                if p.name in foreign and p.contains(foreign[p.name])
                else _midpoint(p)
            )
        )

    # -- editing -------------------------------------------------------------------------
    def override(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """Returns a new space with parameters narrowed, fixed, replaced or added.

        Args:
            overrides: name -> a scalar (fix the parameter to it), a dict of fields to change
                (``low``, ``high``, ``choices``, ``log``, ``step``, ``when``), a dict with
                ``type`` (replace the parameter, or append it when the name is new), or
                None (remove the parameter and those conditional on it).

        Raises:
            SpaceError: an override names no parameter and has no ``type``, or the result is
                invalid.
        """
        params = list(self._params)
        index = {p.name: i for i, p in enumerate(params)}
        removed: set[str] = set()
        for name, spec in overrides.items():
            check_name(name)
            if spec is None:
                removed.add(name)
                continue
            if isinstance(spec, Mapping) and "type" in spec:
                new = param_from_dict(name, spec)
            elif name not in index:
                raise SpaceError(
                    f"override names unknown parameter '{name}'; give it a 'type' to add it."
                )
            elif isinstance(spec, Mapping):
                new = _narrow(params[index[name]], spec)
            else:
                new = Fixed(name, value=spec, condition=params[index[name]].condition)
            if name in index:
                params[index[name]] = new
            else:
                index[name] = len(params)
                params.append(new)
        if removed:
            unknown = removed - set(index)
            if unknown:
                raise SpaceError(f"override removes unknown parameter {brief(min(unknown))}.")
            changed = True
            while changed:
                changed = False
                for p in params:
                    if p.condition and p.condition.parent in removed and p.name not in removed:
                        removed.add(p.name)
                        changed = True
            params = [p for p in params if p.name not in removed]
        return SearchSpace(params)

    # -- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain dict (name -> spec), in order, that :meth:`from_dict` reads back."""
        return {"base": "none", "params": {p.name: p.to_dict() for p in self._params}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Reads a space: ``{"base": "default", "params": {name: override}}`` edits the default
        space (``base`` may be left out); ``{"base": "none", "params": {name: spec}}`` defines
        a space from scratch.

        Raises:
            SpaceError: the data is not a valid space.
        """
        if not isinstance(data, Mapping):
            raise SpaceError("a search space must be a mapping with a 'params' key.")
        unknown = _first_unknown(data, {"base", "params"})
        if unknown is not None:
            raise SpaceError(f"unknown key {unknown} in the search space; use 'base' and 'params'.")
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise SpaceError("the space's 'params' must be a mapping from name to spec.")
        base = data.get("base", "default")
        if base in (None, "none"):
            return cls([param_from_dict(name, spec) for name, spec in params.items()])
        if base != "default":
            raise SpaceError(f"unknown base space {brief(base)}; use 'default' or 'none'.")
        return default_space().override(params)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        """Writes the space as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            path.write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """Reads a space from a YAML or JSON file.

        Raises:
            SpaceError: the file is missing, unparsable or not a valid space.
        """
        return cls.from_dict(load_mapping(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, (list, dict, set)):
                raise SpaceError(f"the key at line {line} is a list or mapping; write a name.")
            if key in seen:
                raise SpaceError(
                    f"key {brief(key)} appears twice (line {line}); give each name once."
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Reads a YAML or JSON file that must hold a mapping.

    Raises:
        SpaceError: the file is missing, unparsable, or not a mapping.
    """
    path = Path(path)
    shown = brief(str(path), 300)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpaceError(f"cannot read {shown}: {exc.strerror or exc}.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpaceError(
            f"{shown} is larger than {MAX_FILE_BYTES >> 10} KiB; a spec is a short text file."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpaceError(f"{shown} is not a UTF-8 text file; give a YAML or JSON spec.") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text, object_pairs_hook=_unique_json_keys)
        else:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except SpaceError as exc:
        raise SpaceError(f"{shown}: {exc}") from None
    except (yaml.YAMLError, json.JSONDecodeError, ValueError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise SpaceError(f"{shown} is not valid YAML/JSON{line}; fix its syntax.") from None
    except RecursionError:
        raise SpaceError(f"{shown} nests too deeply; a spec needs only a few levels.") from None
    if not isinstance(data, dict):
        raise SpaceError(f"{shown} must hold a mapping of keys to values.")
    return data


def _unique_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SpaceError(f"key {brief(key)} appears twice; give each name once.")
        out[key] = value
    return out


def param_from_dict(name: str, spec: Mapping[str, Any]) -> Param:
    """Builds one parameter spec from its dict form (``type`` plus its fields, ``when``).

    Raises:
        SpaceError: unknown type or fields.
    """
    check_name(name)
    if not isinstance(spec, Mapping):
        raise SpaceError(f"parameter '{name}': its spec must be a mapping with a 'type'.")
    spec = dict(spec)
    kind = spec.pop("type", None)
    if not isinstance(kind, str) or kind not in _KINDS:
        raise SpaceError(
            f"parameter '{name}': unknown type {brief(kind)}; use one of {', '.join(_KINDS)}."
        )
    when = spec.pop("when", None)
    cls = _KINDS[kind]
    allowed = {f.name for f in fields(cls) if f.name not in ("name", "condition")}
    unknown = _first_unknown(spec, allowed)
    if unknown is not None:
        raise SpaceError(
            f"parameter '{name}': unknown field {unknown} for type {kind}; "
            f"allowed: {', '.join(sorted(allowed))}."
        )
    if "choices" in spec:
        if not isinstance(spec["choices"], (list, tuple)):
            raise SpaceError(f"parameter '{name}': choices must be a list.")
        spec["choices"] = tuple(spec["choices"])
    if kind in ("int", "float") and ("low" not in spec or "high" not in spec):
        raise SpaceError(f"parameter '{name}': an {kind} needs both low and high.")
    if kind == "fixed" and "value" not in spec:
        raise SpaceError(f"parameter '{name}': a fixed parameter needs a value.")
    if kind == "float":
        spec = {
            k: (float(v) if k in ("low", "high", "step") and _finite(v) else v)
            for k, v in spec.items()
        }
    param = cls(name, condition=_condition_from(name, when), **spec)
    param.validate()
    return param


def _first_unknown(spec: Mapping[Any, Any], allowed: set[str]) -> str | None:
    """The first key of ``spec`` that is not in ``allowed``, quoted, or None."""
    for key in spec:
        if key not in allowed:
            return brief(key)
    return None


def _condition_from(name: str, when: Any) -> Condition | None:
    if when is None:
        return None
    if not isinstance(when, Mapping) or "parent" not in when:
        raise SpaceError(f"parameter '{name}': 'when' must be a mapping with a 'parent'.")
    unknown = _first_unknown(when, {"parent", "values", "min", "max"})
    if unknown is not None:
        raise SpaceError(
            f"parameter '{name}': unknown key {unknown} in 'when'; use parent, values, min, max."
        )
    values = when.get("values")
    if values is not None and not isinstance(values, (list, tuple)):
        values = [values]
    return Condition(
        when["parent"],
        tuple(values) if values is not None else None,
        when.get("min"),
        when.get("max"),
    )


def _narrow(param: Param, spec: Mapping[str, Any]) -> Param:
    spec = dict(spec)
    allowed = set(param.__dataclass_fields__) - {"name", "condition"} | {"when"}
    unknown = _first_unknown(spec, allowed)
    if unknown is not None:
        raise SpaceError(
            f"parameter '{param.name}': cannot override {unknown} of a "
            f"{param.kind} parameter; allowed: {', '.join(sorted(allowed))}."
        )
    if "when" in spec:
        spec["condition"] = _condition_from(param.name, spec.pop("when"))
    if "choices" in spec:
        if not isinstance(spec["choices"], (list, tuple)):
            raise SpaceError(f"parameter '{param.name}': choices must be a list.")
        spec["choices"] = tuple(spec["choices"])
    new = replace(param, **spec)
    if "default" not in spec and new.default is not None and not new.contains(new.default):
        new = replace(new, default=None)  # narrowed past its default: the midpoint serves
    new.validate()
    return new


def _plain(param: Param, value: Any) -> Value:
    """Turns a library's value (numpy scalars included) into a plain Python value."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(param, Int):
        return int(value)
    if isinstance(param, Float):
        return float(value)
    for choice in getattr(param, "choices", ()):
        if value == choice and type(value) is type(choice):
            return choice
    for choice in getattr(param, "choices", ()):
        if value == choice:
            return choice
    return value


def _midpoint(param: Param) -> Value:
    if param.default is not None:
        return param.default
    if isinstance(param, Categorical):
        return param.choices[0]
    if isinstance(param, Fixed):
        return param.value
    if param.log:
        mid = math.exp((math.log(param.low) + math.log(param.high)) / 2)
    else:
        mid = (param.low + param.high) / 2
    if isinstance(param, Int):
        mid = param.low + round((mid - param.low) / param.step) * param.step
        return int(min(max(mid, param.low), param.high))
    if param.step:
        mid = param.low + round((mid - param.low) / param.step) * param.step
    return float(mid)


MAX_CONV_BLOCKS = 4
MAX_FC_LAYERS = 3


MAX_RES_GROUPS = 4
_BATCH_SIZES_V1 = (32, 64, 128, 256)
_LR_HIGH_V1 = 1e-1
#: SGD on batch-normed, scale-free networks (family resnet) trains best near 1.
_LR_HIGH = 2.0
_LR_DEFAULT = math.sqrt(1e-4 * _LR_HIGH_V1)  # the midpoint before the range grew
DENSENET_LAYERS = 427  # layers of Keras' DenseNet121 without its top

#: The training recipe's parameters, each with the default that reproduces the recipe of
#: studies made before they existed (constant rate, no EMA, no test-time augmentation, Keras'
#: batch norm); a study recorded before them resumes with them fixed there.
RECIPE_PARAMS = (
    "lr_schedule",
    "warmup_fraction",
    "weight_decay",
    "momentum",
    "nesterov",
    "bn_momentum",
    "bn_scale",
    "ema",
    "ema_momentum",
    "flip_mode",
    "crop_pixels",
    "tta",
)


def default_space() -> SearchSpace:
    """The default space of the product (see README: "The search space").

    Returns:
        ``family`` (fixed to ``cnn``; a spec may open it to ``alexnet`` and ``densenet121``),
        then for ``cnn``: conv blocks 1-4 with per-block filters (16-512, log) and dropout
        (0-0.5), convs per block 1-3, kernel 3/5, padding, batch norm, pooling; for ``cnn``
        and ``densenet121``: FC layers 0-3 with per-layer widths (64-4096, log) and dropout
        (0-0.6); for ``alexnet``: its dropout; for ``densenet121``: mode (scratch, transfer,
        finetune), input size, layers kept, the share unfrozen and the fine-tuning learning
        rate scale; for all: activation, optimizer, learning rate, batch size, label
        smoothing, flip and crop augmentation.
    """
    cnn = Condition("family", values=("cnn",))
    params: list[Param] = [
        Fixed("family", value="cnn"),
        Int("conv_blocks", low=1, high=MAX_CONV_BLOCKS, condition=cnn),
    ]
    for k in range(1, MAX_CONV_BLOCKS + 1):
        when = Condition("conv_blocks", min=k)
        params.append(Int(f"filters_{k}", low=16, high=512, log=True, condition=when))
        params.append(Float(f"block_dropout_{k}", low=0.0, high=0.5, condition=when))
    params += [
        Int("convs_per_block", low=1, high=3, condition=cnn),
        Categorical("kernel_size", choices=(3, 5), condition=cnn),
        Categorical("padding", choices=("same", "valid_last"), condition=cnn),
        Categorical("batch_norm", choices=(False, True), condition=cnn),
        Categorical("pooling", choices=("max", "avg"), condition=cnn),
        Int(
            "fc_layers",
            low=0,
            high=MAX_FC_LAYERS,
            condition=Condition("family", values=("cnn", "densenet121")),
        ),
    ]
    for k in range(1, MAX_FC_LAYERS + 1):
        when = Condition("fc_layers", min=k)
        params.append(Int(f"fc_units_{k}", low=64, high=4096, log=True, condition=when))
        params.append(Float(f"fc_dropout_{k}", low=0.0, high=0.6, condition=when))
    dense = Condition("family", values=("densenet121",))
    pretrained = Condition("densenet_mode", values=("transfer", "finetune"))
    params += [
        Float(
            "alexnet_dropout", low=0.0, high=0.6, condition=Condition("family", values=("alexnet",))
        ),
        Categorical("densenet_mode", choices=("scratch", "transfer", "finetune"), condition=dense),
        Categorical("densenet_input_size", choices=(32, 64, 96), condition=dense),
        Int("densenet_keep_layers", low=12, high=DENSENET_LAYERS, log=True, condition=pretrained),
        Float(
            "densenet_unfreeze_fraction",
            low=0.0,
            high=1.0,
            condition=Condition("densenet_mode", values=("finetune",)),
        ),
        Float(
            "finetune_lr_scale",
            low=0.01,
            high=1.0,
            log=True,
            condition=Condition("densenet_mode", values=("finetune",)),
        ),
    ]
    params += _resnet_params()
    params += _training_params()
    return SearchSpace(params)


def _training_params() -> list[Param]:
    """For every family: activation, optimizer, learning rate, batch size, label smoothing,
    flip and crop augmentation, and the training recipe (see RECIPE_PARAMS)."""
    sgd = Condition("optimizer", values=("sgd",))
    return [
        Categorical("activation", choices=("relu", "swish", "elu", "gelu", "leaky_relu")),
        Categorical("optimizer", choices=("adamax", "adam", "adamw", "sgd", "rmsprop")),
        Float("learning_rate", low=1e-4, high=_LR_HIGH, log=True, default=_LR_DEFAULT),
        Categorical("batch_size", choices=(*_BATCH_SIZES_V1, 512)),
        Float("label_smoothing", low=0.0, high=0.2),
        Categorical("augment_flip", choices=(True, False)),
        Categorical("augment_crop", choices=(False, True)),
        # the training recipe (see RECIPE_PARAMS and hpo32.search.recipe)
        Categorical("lr_schedule", choices=SCHEDULES),
        Float("warmup_fraction", low=0.0, high=0.3, default=0.0),
        Float("weight_decay", low=0.0, high=0.01, default=0.0),
        Float("momentum", low=0.8, high=0.99, default=0.9, condition=sgd),
        Categorical("nesterov", choices=(True, False), condition=sgd),
        Float("bn_momentum", low=0.4, high=0.99, default=0.99),
        Categorical("bn_scale", choices=("learned", "frozen")),
        Categorical("ema", choices=(False, True)),
        Float(
            "ema_momentum",
            low=0.9,
            high=0.999,
            default=0.99,
            condition=Condition("ema", values=(True,)),
        ),
        Categorical(
            "flip_mode",
            choices=("random", "alternating"),
            condition=Condition("augment_flip", values=(True,)),
        ),
        Int(
            "crop_pixels",
            low=1,
            high=4,
            default=4,
            condition=Condition("augment_crop", values=(True,)),
        ),
        Categorical("tta", choices=TTA_MODES),
    ]


def _resnet_params() -> list[Param]:
    """``family: resnet`` (see :func:`hpo32.search.models.build_resnet`): the stem, 2-4 conv
    groups with a width each, the convolutions after each group's first, the residual add,
    dirac initialisation and the head."""
    resnet = Condition("family", values=("resnet",))
    params: list[Param] = [
        Categorical("stem_kernel", choices=(2, 3), condition=resnet),
        Int("stem_width", low=16, high=64, log=True, default=24, condition=resnet),
        Categorical("stem_whiten", choices=(True, False), condition=resnet),
        Int("res_groups", low=2, high=MAX_RES_GROUPS, default=3, condition=resnet),
    ]
    for k in range(1, MAX_RES_GROUPS + 1):
        params.append(
            Int(f"width_{k}", low=32, high=512, log=True, condition=Condition("res_groups", min=k))
        )
    params += [
        Int("group_convs", low=1, high=3, default=1, condition=resnet),
        Categorical("residual", choices=(False, True), condition=resnet),
        Categorical("dirac_init", choices=(True, False), condition=resnet),
        Categorical("head_pool", choices=("max", "avg"), condition=resnet),
        Float("head_dropout", low=0.0, high=0.5, default=0.0, condition=resnet),
        Float("logit_scale", low=0.05, high=1.0, log=True, default=1 / 9, condition=resnet),
    ]
    return params


def space_v1(space: SearchSpace) -> SearchSpace:
    """``space`` as a study made before the training recipe was searchable (spec
    ``space_version`` 1) knew it: the recipe parameters fixed at their defaults and the
    batch sizes it could choose (Optuna refuses a parameter whose choices changed)."""
    edits: dict[str, Any] = {n: _midpoint(space[n]) for n in RECIPE_PARAMS if n in space}
    default = default_space()
    grown = {"batch_size": {"choices": _BATCH_SIZES_V1}, "learning_rate": {"high": _LR_HIGH_V1}}
    for name, before in grown.items():
        if name in space and space[name] == default[name]:
            edits[name] = before
    return space.override(edits)


#: Today's recipe as values of the recipe parameters (see RECIPE_PARAMS).
PLAIN_RECIPE: dict[str, Value] = {
    "lr_schedule": "constant",
    "warmup_fraction": 0.0,
    "weight_decay": 0.0,
    "bn_momentum": 0.99,
    "bn_scale": "learned",
    "ema": False,
    "flip_mode": "random",
    "tta": "none",
}


#: Configs a spec's ``warm_start`` may name (``{config: airbench94, tta: flip}``).
def named_configs() -> dict[str, dict[str, Value]]:
    """Name -> config: ``maxnet`` and ``airbench94``."""
    return {"maxnet": dict(MAXNET_CONFIG), "airbench94": dict(AIRBENCH94_CONFIG)}


#: The report's network ("MaxNet") as one config of the default space.
MAXNET_CONFIG: dict[str, Value] = {
    "family": "cnn",
    "conv_blocks": 3,
    "filters_1": 64,
    "block_dropout_1": 0.25,
    "filters_2": 256,
    "block_dropout_2": 0.24,
    "filters_3": 128,
    "block_dropout_3": 0.25,
    "convs_per_block": 2,
    "kernel_size": 3,
    "padding": "valid_last",
    "batch_norm": False,
    "pooling": "max",
    "fc_layers": 2,
    "fc_units_1": 256,
    "fc_dropout_1": 0.35,
    "fc_units_2": 512,
    "fc_dropout_2": 0.24,
    "activation": "relu",
    "optimizer": "adamax",
    "learning_rate": 0.002,
    "batch_size": 128,
    "label_smoothing": 0.0,
    "augment_flip": True,
    "augment_crop": False,
    **PLAIN_RECIPE,
}

#: airbench94's layout (KellerJordan/cifar10-airbench) as one config of the default space:
#: a frozen 2x2 whitening stem of width 24, groups of widths 64/256/256 with one more conv
#: each, dirac init, batch norm with Keras momentum 0.4 (PyTorch's 0.6) and frozen scale,
#: GELU, global max pool, logits x 1/9; SGD with Nesterov momentum 0.85 at airbench's
#: per-image rate (its 1.5 for a mean loss over 1,024 images, halved for 512), decoupled weight
#: decay 0.005, label smoothing 0.2, batch 512, a one-cycle rate, flips that alternate, 2-pixel
#: translations and six-view test-time augmentation. airbench's other tricks (lookahead, a
#: boosted bias rate) are not in the space; EMA of the weights stands in for lookahead.
AIRBENCH94_CONFIG: dict[str, Value] = {
    "family": "resnet",
    "stem_kernel": 2,
    "stem_width": 24,
    "stem_whiten": True,
    "res_groups": 3,
    "width_1": 64,
    "width_2": 256,
    "width_3": 256,
    "group_convs": 1,
    "residual": False,
    "dirac_init": True,
    "head_pool": "max",
    "head_dropout": 0.0,
    "logit_scale": 1 / 9,
    "activation": "gelu",
    "optimizer": "sgd",
    "learning_rate": 0.75,
    "batch_size": 512,
    "label_smoothing": 0.2,
    "augment_flip": True,
    "augment_crop": True,
    "lr_schedule": "onecycle",
    "warmup_fraction": 0.2,
    "weight_decay": 0.005,
    "momentum": 0.85,
    "nesterov": True,
    "bn_momentum": 0.4,
    "bn_scale": "frozen",
    "ema": False,
    "flip_mode": "alternating",
    "crop_pixels": 2,
    "tta": "flip_translate",
}
