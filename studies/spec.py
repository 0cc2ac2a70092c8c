"""Study specs: what a search runs (dataset, engine, budgets, fidelity, space), from presets,
spec files and command-line overrides."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from hpo32.durations import format_duration
from hpo32.search.engines import engine_names
from hpo32.search.space import (
    Categorical,
    Fixed,
    Float,
    Int,
    Param,
    SearchSpace,
    SpaceError,
    brief,
    load_mapping,
    space_v1,
)

__all__ = [
    "ENGINES",
    "PRESET_DIR",
    "SpecError",
    "StudySpec",
    "check_study_name",
    "format_duration",
    "list_presets",
    "load_preset",
    "parse_duration",
]

PRESET_DIR = Path(__file__).parent / "presets"
#: Every engine name a spec may give, from the engine registry (hpo32.search.engines).
ENGINES = engine_names()
DATASETS = ("cifar10", "imagenet32")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DURATION_RE = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
#: The largest spec, in its JSON form (a spec is a few kilobytes; an alias bomb is not).
MAX_SPEC_BYTES = 64 * 1024
#: The deepest nesting of a spec's values (the space's ``when`` is 5 levels down).
MAX_SPEC_DEPTH = 16
#: The largest count a spec takes (trials, epochs, images, failures).
MAX_COUNT = 10**9
#: Seeds are offset by sessions and trials and must stay below 2**32 for NumPy.
MAX_SEED = 2**31 - 1


class SpecError(ValueError):
    """An invalid study spec or option; the message is one sentence with the fix."""


def parse_duration(text: str | int | float | None, what: str = "budget") -> float | None:
    """Seconds from ``90s``, ``10m``, ``2h``, ``1h30m`` or a plain number of seconds.

    Raises:
        SpecError: unparsable, zero or negative.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        try:
            seconds = float(text)
        except OverflowError:
            seconds = math.inf
    else:
        body = str(text).strip().lower() if isinstance(text, str) else ""
        sign = -1.0 if body.startswith("-") else 1.0
        match = _DURATION_RE.fullmatch(body.lstrip("-")) if len(body) <= 40 else None
        if not match or not any(match.groups()):
            raise SpecError(
                f"cannot read {what} {brief(text)}; write it like 90s, 10m, 2h or 1h30m."
            )
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = sign * (h * 3600 + m * 60 + s)
    if not math.isfinite(seconds):
        raise SpecError(f"{what} must be a finite duration like 90s, 10m or 2h, got {brief(text)}.")
    if seconds <= 0:
        raise SpecError(f"{what} must be positive, got {brief(text)}.")
    return seconds


def check_study_name(name: str) -> str:
    """Raises SpecError unless ``name`` is letters, digits, ``.``, ``_``, ``-`` (max 100)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise SpecError(
            f"study name {brief(name)} is not allowed; use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, at most 100 characters)."
        )
    return name


@dataclass(frozen=True)
class StudySpec:
    """A study's settings. Budgets are seconds; ``space`` is the space's dict form.

    Attributes:
        description: one line for ``hpo32 presets``.
        dataset: ``cifar10``, ``imagenet32`` or ``folder:PATH``.
        classes: ImageNet32 class subset: first N, or a list of 1-based labels or WNIDs.
        data_dir: where the data lies (else ``$HPO32_DATA_DIR``, else the Keras cache); a
            folder named here or in the environment is the only place looked at.
        download: fetch CIFAR-10 from its official archive into the named data folder when
            it is missing there (without a named folder, it goes to the Keras cache anyway).
        engine: the search engine.
        sampler, pruner: Optuna's sampler and pruner.
        budget: wall-clock seconds for the whole study, across resumes.
        trial_budget: wall-clock seconds per trial.
        trial_share: without ``trial_budget``, each trial's budget as this share of
            ``budget`` (0 to 1): a preset for a slow machine trains one long trial in whatever
            budget it is given (see :attr:`trial_seconds`).
        n_trials: finished trials the study should reach.
        max_failures: the search stops after this many failed trials in a row.
        keep_top: the models kept on disk: those of the best ``keep_top`` complete trials
            (saved without optimizer state); a model pushed out of them is deleted.
        epochs: epochs per trial.
        train_limit, val_limit: stratified subsets of the training and validation images.
        val_fraction: share of the training images held out for validation.
        seed: base random seed.
        weights: DenseNet121 ImageNet weights file for transfer learning and fine-tuning.
        precision: ``auto`` (mixed precision where the hardware runs it natively),
            ``float32``, ``bfloat16`` or ``float16``.
        backend: the Keras 3 backend the trials train on, ``tensorflow``, ``jax`` or
            ``torch``; None until the command line fills it in (``--backend``, else
            ``$KERAS_BACKEND``, else ``tensorflow``); a study stored without it is
            ``tensorflow``.
        epoch_images: images per epoch, when fewer than the training set: the unit of
            fidelity that pruners judge (low-fidelity early epochs); None means full epochs.
        warm_start: configs the study tries first (Optuna engine), as a user of Optuna
            would ``enqueue_trial`` them: each a mapping of parameter values, the parameters
            it leaves out at the space's defaults, so ``{}`` is the default config.
        first_epochs: size the first warm-start config for this machine: its group widths
            scaled so that, at the rate a few timed steps measure here, its trial trains
            this many epochs within its trial budget (:mod:`hpo32.search.sizing`).
        space: ``{"base": "default", "params": {...}}`` or a full ``{"params": {...}}``.
        space_version: 2 for studies made with the training-recipe parameters
            (:data:`hpo32.search.space.RECIPE_PARAMS`); a study stored before them reads 1 and
            keeps today's recipe: those parameters are fixed at their defaults.

    A preset or spec file may also hold ``machine: {cpu: {...}, cpu-bf16: {...}, gpu: {...}}``:
    the settings for the kind of machine it runs on, the most specific that fits
    (:func:`hpo32.search.hardware.machine_kinds`), laid over the rest when the spec is read,
    so a study records what it ran with.
    """

    description: str = ""
    dataset: str = "cifar10"
    classes: int | list[int | str] | None = None
    data_dir: str | None = None
    download: bool = False
    engine: str = "optuna"
    sampler: str = "tpe"
    pruner: str = "median"
    budget: float | None = None
    trial_budget: float | None = None
    trial_share: float | None = None
    n_trials: int | None = None
    max_failures: int = 5
    keep_top: int = 1
    epochs: int = 5
    train_limit: int | None = None
    val_limit: int | None = None
    val_fraction: float = 0.1
    seed: int = 0
    weights: str | None = None
    precision: str = "auto"
    backend: str | None = None
    epoch_images: int | None = None
    warm_start: list[dict[str, Any]] | None = None
    first_epochs: float | None = None
    space: dict[str, Any] = field(default_factory=lambda: {"base": "default"})
    space_version: int = 2

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "spec") -> StudySpec:
        """Reads and validates a spec mapping (budgets may be ``10m``-style strings).

        Any mapping is read or refused with one SpecError (a corrupt stored spec too): values
        must be plain YAML/JSON ones, at most :data:`MAX_SPEC_DEPTH` levels deep and
        :data:`MAX_SPEC_BYTES` in their JSON form.

        Raises:
            SpecError: unknown keys, bad values or an invalid space.
        """
        try:
            return cls._from_dict(data, source)
        except SpecError:
            raise
        except Exception as exc:  # a check missed: still one sentence, never a traceback
            raise SpecError(
                f"{source} could not be checked ({type(exc).__name__}); fix its values as the "
                "README's spec section describes."
            ) from None

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], source: str) -> StudySpec:
        if not isinstance(data, Mapping):
            raise SpecError(f"{source} must be a mapping of keys to values, not {brief(data)}.")
        check_plain(data, source)
        data = _for_this_machine(data, source)
        known = {f.name for f in fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise SpecError(
                f"unknown key {brief(unknown[0])} in {source}; known keys: "
                f"{', '.join(sorted(known))}."
            )
        values = dict(data)
        for key in ("budget", "trial_budget"):
            if key in values:
                values[key] = parse_duration(values[key], key.replace("_", " "))
        spec = cls(**values)
        spec.validate()
        return spec

    @property
    def trial_seconds(self) -> float | None:
        """Seconds per trial: ``trial_budget``, else ``trial_share`` of ``budget``, else None."""
        if self.trial_budget is not None:
            return self.trial_budget
        if self.trial_share is not None and self.budget is not None:
            return self.trial_share * self.budget
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> StudySpec:
        """A copy with every override that is not None applied, then validated."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        spec = replace(self, **changes)
        spec.validate()
        return spec

    def build_space(self) -> SearchSpace:
        """The validated search space of this spec.

        Raises:
            SpecError: the space is invalid.
        """
        try:
            space = SearchSpace.from_dict(self.space)
            return space_v1(space) if self.space_version < 2 else space
        except SpaceError as exc:
            raise SpecError(f"invalid search space: {exc}") from None

    def warm_start_configs(
        self, space: SearchSpace, best_of: BestOf | None = None
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The :attr:`warm_start` configs, each with the user attributes its trial records.

        An entry is a mapping of parameter values (the rest at ``space``'s defaults), one
        that names a known config, ``{config: airbench94, tta: flip}`` (its values that
        ``space`` holds, the given ones over them), or another study,
        ``{study: NAME, top: K}``: its best K complete trials, each adopted by ``space``
        (values it holds kept, the rest at its defaults), read through ``best_of``.

        Raises:
            SpecError: an entry is not a mapping, does not fit the space, names an unknown
                config, or a study that ``best_of`` does not find.
        """
        from hpo32.search import models

        if self.warm_start is None:
            return []
        if not isinstance(self.warm_start, list):
            raise SpecError("warm_start must be a list of configs, e.g. [{}, {batch_norm: true}].")
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for k, entry in enumerate(self.warm_start, 1):
            if not isinstance(entry, Mapping):
                raise SpecError(
                    f"warm_start config {k} must be a mapping of parameter values, got "
                    f"{brief(entry)}."
                )
            try:
                if "study" in entry:
                    configs = _from_study(k, entry, space, best_of)
                else:
                    partial = dict(entry)
                    if "config" in partial:
                        partial = _named(k, partial, space)
                    configs = [(space.complete(partial), {})]
                for config, _ in configs:
                    models.check_config(config)
            except (SpaceError, models.InvalidConfig) as exc:
                raise SpecError(f"warm_start config {k}: {str(exc).rstrip('.')}.") from None
            out += configs
        return out

    def validate(self) -> None:
        """Raises SpecError for any invalid setting: each key's type and range, the space,
        and every value the space can take against what the model builder takes."""
        from hpo32.search.engines.optuna import PRUNERS, SAMPLERS
        from hpo32.search.hardware import BACKENDS
        from hpo32.search.training import PRECISIONS

        self._check_types()
        if not (self.dataset in DATASETS or self.dataset.startswith("folder:")):
            raise SpecError(
                f"unknown dataset {brief(self.dataset)}; use cifar10, imagenet32 or folder:PATH."
            )
        for key, known in (
            ("engine", ENGINES),
            ("sampler", SAMPLERS),
            ("pruner", PRUNERS),
            ("precision", PRECISIONS),
            ("backend", (*BACKENDS, None)),
        ):
            if getattr(self, key) not in known:
                names = ", ".join(k for k in known if k)
                raise SpecError(f"unknown {key} {brief(getattr(self, key))}; use one of {names}.")
        for key in ("n_trials", "max_failures", "keep_top", "epochs", "train_limit", "val_limit"):
            self._check_count(key)
        self._check_count("epoch_images")
        for key in ("budget", "trial_budget"):
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise SpecError(f"{key.replace('_', ' ')} must be positive, got {brief(value)}.")
        if self.first_epochs is not None and not (
            math.isfinite(self.first_epochs) and self.first_epochs > 0
        ):
            raise SpecError(
                f"first_epochs must be a positive number of epochs, got {brief(self.first_epochs)}."
            )
        if self.trial_share is not None and not 0 < self.trial_share <= 1:
            raise SpecError(
                f"trial_share must be more than 0 and at most 1, got {brief(self.trial_share)}."
            )
        if not 0 < self.val_fraction < 1:
            raise SpecError(
                f"val_fraction must lie between 0 and 1, got {brief(self.val_fraction)}."
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise SpecError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}.")
        if self.space_version not in (1, 2):
            raise SpecError(f"space_version must be 1 or 2, got {self.space_version}.")
        _check_classes(self.classes)
        space = self.build_space()
        check_space(space)
        if self.sampler == "grid":
            _check_grid(space)
        if self.warm_start and self.engine != "optuna":
            raise SpecError(
                f"warm_start works with the optuna engine, not '{self.engine}'; "
                "remove it or use --engine optuna."
            )
        self.warm_start_configs(space)

    def _check_types(self) -> None:
        """Raises SpecError for a key whose value has the wrong type (``seed: abc``)."""
        for key, (types, want) in _WANTS.items():
            value = getattr(self, key)
            if value is None and key in _OPTIONAL:
                continue
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                hint = ""
                if isinstance(value, str) and {int, float} & set(types):
                    hint = "; write a number without quotes"
                raise SpecError(f"{key} must be {want}, not {brief(value)}{hint}.")
            if isinstance(value, str) and (len(value) > _MAX_TEXT or "\x00" in value):
                raise SpecError(
                    f"{key} must be at most {_MAX_TEXT} characters of text, without NUL bytes."
                )

    def _check_count(self, key: str) -> None:
        value = getattr(self, key)
        if value is not None and not 1 <= value <= MAX_COUNT:
            flag = key.replace("_", "-")
            raise SpecError(
                f"{flag} must be a positive integer (at most {MAX_COUNT:,}), got {brief(value)}."
            )


#: Each key's type(s) and what it must be, in words.
_WANTS: dict[str, tuple[tuple[type, ...], str]] = {
    "description": ((str,), "a line of text"),
    "dataset": ((str,), "cifar10, imagenet32 or folder:PATH"),
    "classes": ((int, str, list), "a class count (2 or more) or a list of classes"),
    "data_dir": ((str,), "a folder path"),
    "download": ((bool,), "true or false"),
    "engine": ((str,), "an engine name"),
    "sampler": ((str,), "a sampler name"),
    "pruner": ((str,), "a pruner name"),
    "budget": ((int, float), "a duration like 10m"),
    "trial_budget": ((int, float), "a duration like 10m"),
    "trial_share": ((int, float), "a number between 0 and 1"),
    "n_trials": ((int,), "a positive integer"),
    "max_failures": ((int,), "a positive integer"),
    "keep_top": ((int,), "a positive integer"),
    "epochs": ((int,), "a positive integer"),
    "train_limit": ((int,), "a positive integer"),
    "val_limit": ((int,), "a positive integer"),
    "val_fraction": ((int, float), "a number between 0 and 1"),
    "seed": ((int,), f"a whole number from 0 to {MAX_SEED}"),
    "weights": ((str,), "a file path"),
    "precision": ((str,), "a precision name"),
    "backend": ((str,), "tensorflow, jax or torch"),
    "epoch_images": ((int,), "a positive integer"),
    "warm_start": ((list,), "a list of configs, e.g. [{}, {batch_norm: true}]"),
    "first_epochs": ((int, float), "a positive number of epochs"),
    "space": ((Mapping,), "a mapping with 'base' and/or 'params'"),
    "space_version": ((int,), "1 or 2"),
}
_OPTIONAL = {
    "classes",
    "data_dir",
    "budget",
    "trial_budget",
    "trial_share",
    "n_trials",
    "train_limit",
    "val_limit",
    "weights",
    "epoch_images",
    "warm_start",
    "first_epochs",
    "backend",
}
#: The longest text a key takes (a path, a description).
_MAX_TEXT = 4096


def _check_classes(classes: Any) -> None:
    """Raises SpecError unless ``classes`` names at least two classes (a one-class study
    scores 1.0 and learns nothing): a count, a list, or its command-line text ``3,7``."""
    if isinstance(classes, str):
        text = classes.strip()
        classes = int(text) if text.isdigit() and len(text) < 10 else text.split(",")
    if classes is None:
        return
    if isinstance(classes, int):
        if classes < 2:
            raise SpecError(
                f"classes must be at least 2 (a one-class study scores 1.0), got {classes}; "
                "pass --classes 2 or more, or leave it out for all classes."
            )
        return
    entries = [c.strip() if isinstance(c, str) else c for c in classes]
    for entry in entries:
        if isinstance(entry, bool) or not isinstance(entry, (int, str)) or not str(entry):
            raise SpecError(
                f"classes lists {brief(entry)}; name each class by its 1-based label or id."
            )
    if len(entries) < 2:
        raise SpecError(
            f"classes must name at least 2 classes (a one-class study scores 1.0), got "
            f"{brief(classes)}."
        )


def check_plain(data: Any, source: str = "spec") -> None:
    """Raises SpecError unless ``data`` holds only YAML/JSON values (mappings with text keys,
    lists, text, numbers, booleans, null), nested at most :data:`MAX_SPEC_DEPTH` deep, and
    its JSON form is at most :data:`MAX_SPEC_BYTES`: an alias bomb is refused after reading
    a little of it, whatever it would grow to."""
    size = 0
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        at = f" at {brief(where.lstrip('.'))}" if where else ""
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(
                f"{source} nests deeper than {MAX_SPEC_DEPTH} levels{at}; a spec needs a few."
            )
        if isinstance(value, Mapping):
            size += 2
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpecError(
                        f"key {brief(key)} in {source}{at} is not text; quote it or rename it."
                    )
                size += len(key) + 4
                stack.append((item, f"{where}.{key}", depth + 1))
        elif isinstance(value, (list, tuple)):
            size += 2 + len(value)
            stack.extend((item, f"{where}[{k}]", depth + 1) for k, item in enumerate(value))
        elif isinstance(value, str):
            size += len(value) + 2
        elif isinstance(value, int):  # bool included; no decimal string of a huge int
            size += value.bit_length() // 3 + 2
        elif value is None or isinstance(value, float):
            size += 24
        else:
            raise SpecError(
                f"{source} holds a {type(value).__name__}{at}; use text, numbers, booleans, "
                "lists and mappings only."
            )
        if size > MAX_SPEC_BYTES:
            raise SpecError(
                f"{source} is larger than {MAX_SPEC_BYTES >> 10} KiB as JSON (YAML aliases "
                "count each time they are used); a spec is a few kilobytes."
            )


def check_space(space: SearchSpace) -> None:
    """Raises SpecError unless the model builder takes what ``space`` can give: every value
    a parameter can take (its fixed value, each choice, both ends of a range) is one the
    builder accepts, every parameter the builder needs for the families and counts the space
    reaches is there, and not every network shrinks the image below one pixel. (A searched
    space whose networks fail only sometimes is taken: those trials fail and are recorded.)"""
    from hpo32.search import models

    for param in space.params:
        for value, which in _reach(param):
            try:
                models.check_value(param.name, value)
            except models.InvalidConfig as exc:
                raise SpecError(
                    f"space parameter {exc}{which}; change it in the spec's space.params."
                ) from None
    families = [f for f in _values(space, "family")] or ["cnn"]
    for family in families:
        reach: dict[str, Any] = {"family": family}
        for count in ("conv_blocks", "fc_layers", "res_groups"):
            if count in space:
                reach[count] = max(_numbers(space, count), default=0)
        for name, why in models.required(reach).items():
            if name not in space:
                count = why.split()[0]
                if count in reach:
                    top = int(name.rsplit("_", 1)[1]) - 1
                    fix = f"lower {count} to at most {top} or add '{name}'"
                else:
                    fix = "add it to the space's params (base: none starts from no parameters)"
                raise SpecError(f"the space has no parameter '{name}', which {why} needs; {fix}.")
    _check_smallest_network(space, families)


def _check_smallest_network(space: SearchSpace, families: list[Any]) -> None:
    """Raises SpecError when even the network of ``space`` that shrinks the image least
    (fewest blocks, convolutions and groups, the smallest kernels, padding 'same') leaves
    less than one pixel, for every family: then every trial would fail."""
    from hpo32.search import models

    smallest: dict[str, Any] = {}
    for name in ("conv_blocks", "convs_per_block", "kernel_size", "stem_kernel", "res_groups"):
        if name in space and _numbers(space, name):
            smallest[name] = min(_numbers(space, name))
    if "padding" in space and "same" in _values(space, "padding"):
        smallest["padding"] = "same"
    shown = ""
    for family in families:
        config = space.adopt({**smallest, "family": family})
        needed = models.required(config)
        if any(n not in config for n in needed) or models.output_size(config) >= 1:
            return
        shown = ", ".join(
            f"{n} {config[n]}" for n in (*smallest, "padding") if n in config and n != "family"
        )
    size = models.IMAGE_SIZE
    raise SpecError(
        f"every network of the space shrinks the {size}x{size} image below one pixel, even "
        f"the smallest ({shown}); use fewer conv blocks, padding 'same' or a smaller kernel."
    )


#: The most configs the grid sampler is asked to hold (Optuna lists them all up front).
MAX_GRID = 10**6


def _check_grid(space: SearchSpace) -> None:
    """Raises SpecError when the grid sampler's grid over ``space`` would hold more than
    :data:`MAX_GRID` configs (its floats without a step are refused when it is made)."""
    size = 1
    for param in space.params:
        if isinstance(param, Categorical):
            size *= len(param.choices)
        elif isinstance(param, Int):
            size *= (param.high - param.low) // param.step + 1
        elif isinstance(param, Float) and param.step:
            size *= int((param.high - param.low) / param.step) + 1
        if size > MAX_GRID:
            raise SpecError(
                f"the grid sampler's grid would hold more than {MAX_GRID:,} configs (at "
                f"'{param.name}'); fix more parameters, narrow their ranges or use another "
                "sampler."
            )


def _reach(param: Param) -> list[tuple[Any, str]]:
    """The values of ``param`` that bound what it can take, each with where it comes from."""
    if isinstance(param, Fixed):
        return [(param.value, "")]
    if isinstance(param, Categorical):
        return [(c, " (one of its choices)") for c in param.choices]
    return [(param.low, " (its low)"), (param.high, " (its high)")]


def _values(space: SearchSpace, name: str) -> list[Any]:
    """The values parameter ``name`` of ``space`` can take, for a fixed or categorical one
    (none otherwise or when absent)."""
    if name not in space:
        return []
    param = space[name]
    if isinstance(param, Fixed):
        return [param.value]
    return list(param.choices) if isinstance(param, Categorical) else []


def _numbers(space: SearchSpace, name: str) -> list[int]:
    """The whole numbers bounding what parameter ``name`` can take (both ends of a range)."""
    param = space[name]
    if isinstance(param, (Int, Float)):
        values: list[Any] = [param.low, param.high]
    else:
        values = _values(space, name)
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


#: Reads another study's best configs: ``best_of(name, top)`` -> [(trial number, config)];
#: raises SpecError when there is no such study.
BestOf = Callable[[str, int], list[tuple[int, dict[str, Any]]]]


def _named(k: int, entry: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The ``{config: NAME, ...}`` entry ``k`` of warm_start: the named config as ``space``
    adopts it, the entry's other values over it (those must fit the space)."""
    from hpo32.search.space import named_configs

    over = {n: v for n, v in entry.items() if n != "config"}
    known = named_configs()
    if not isinstance(entry["config"], str) or entry["config"] not in known:
        raise SpecError(
            f"warm_start config {k} names unknown config {brief(entry['config'])}; use one of "
            f"{', '.join(known)}."
        )
    config = space.adopt({**known[entry["config"]], **over})
    for name, value in over.items():
        if name not in space:
            raise SpaceError(f"no parameter named {brief(name)} in the space.")
        if config.get(name) != value:
            raise SpaceError(
                f"config value {brief(value)} of '{name}' is out of range or inactive."
            )
    return config


def _from_study(
    k: int, entry: Mapping[str, Any], space: SearchSpace, best_of: BestOf | None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The ``{study: NAME, top: K}`` entry ``k`` of warm_start, adopted by ``space``."""
    unknown = set(entry) - {"study", "top"}
    top = entry.get("top", 1)
    if unknown or not isinstance(entry["study"], str):
        raise SpecError(f"warm_start config {k}: write another study as {{study: NAME, top: K}}.")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise SpecError(f"warm_start config {k}: top must be a positive integer, got {brief(top)}.")
    if best_of is None:  # checked when the study is made
        return []
    return [
        (space.adopt(config), {"warm_start_from": {"study": entry["study"], "trial": number}})
        for number, config in best_of(entry["study"], top)
    ]


def _for_this_machine(data: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """``data`` with the ``machine`` section that fits this machine best laid over the rest
    (:func:`hpo32.search.hardware.machine_kinds`: ``cpu-bf16`` before ``cpu``)."""
    if "machine" not in data:
        return data
    from hpo32.search.hardware import MACHINE_KINDS, machine_kinds

    sections = data["machine"]
    if (
        not isinstance(sections, Mapping)
        or not set(sections) <= set(MACHINE_KINDS)
        or not all(isinstance(v, Mapping) for v in sections.values())
    ):
        raise SpecError(
            f"'machine' in {source} must map some of {', '.join(MACHINE_KINDS)} to settings."
        )
    kinds = machine_kinds()
    kind = next((k for k in kinds if k in sections), None)
    if kind is None:
        raise SpecError(
            f"{source} has no settings for a {kinds[-1]} machine (it has "
            f"{brief(list(sections))}); pick another preset."
        )
    return _merge({k: v for k, v in data.items() if k != "machine"}, sections[kind])


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on it; mappings in both are merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def list_presets() -> dict[str, str]:
    """Preset name -> its one-line description."""
    return {name: info[0] for name, info in preset_fits().items()}


def preset_fits() -> dict[str, tuple[str, bool | None]]:
    """Preset name -> (description, whether it is sized for this kind of machine): True
    when its ``machine`` section names a kind that fits here, False when it names only
    others, None when it has no such section (it runs the same everywhere)."""
    from hpo32.search.hardware import machine_kinds

    out: dict[str, tuple[str, bool | None]] = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        data = load_mapping(path)
        sections = data.get("machine")
        fits = (
            any(k in sections for k in machine_kinds()) if isinstance(sections, Mapping) else None
        )
        out[path.stem] = (str(data.get("description", "")), fits)
    return out


def load_preset(name: str) -> StudySpec:
    """Reads preset ``name`` from :data:`PRESET_DIR`.

    Raises:
        SpecError: no such preset, or it is invalid.
    """
    path = PRESET_DIR / f"{name}.yaml"
    if not (isinstance(name, str) and _NAME_RE.fullmatch(name) and path.is_file()):
        raise SpecError(f"unknown preset {brief(name)}; choose one of {', '.join(list_presets())}.")
    return load_spec_file(path)


def load_spec_file(path: str | Path) -> StudySpec:
    """Reads a YAML/JSON spec file.

    Raises:
        SpecError: missing, unparsable or invalid.
    """
    try:
        data = load_mapping(path)
    except SpaceError as exc:
        raise SpecError(str(exc)) from None
    return StudySpec.from_dict(data, source=f"'{path}'")
