"""Study specs: what a search runs (dataset, engine, budgets, fidelity, space), from presets,
spec files and command-line overrides."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from hpo32.search.space import SearchSpace, SpaceError, load_mapping, space_v1

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
ENGINES = (
    "optuna",
    "keras-tuner:random",
    "keras-tuner:bayesian",
    "keras-tuner:hyperband",
    "autokeras:greedy",
    "autokeras:bayesian",
    "autokeras:hyperband",
    "autokeras:random",
)
DATASETS = ("cifar10", "imagenet32")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


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
        seconds = float(text)
    else:
        body = str(text).strip().lower()
        sign = -1.0 if body.startswith("-") else 1.0
        match = _DURATION_RE.match(body.lstrip("-"))
        if not match or not any(match.groups()):
            raise SpecError(f"cannot read {what} '{text}'; write it like 90s, 10m, 2h or 1h30m.")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = sign * (h * 3600 + m * 60 + s)
    if seconds <= 0:
        raise SpecError(f"{what} must be positive, got '{text}'.")
    return seconds


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``5m30s``, ``42s``; ``-`` for None."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def check_study_name(name: str) -> str:
    """Raises SpecError unless ``name`` is letters, digits, ``.``, ``_``, ``-`` (max 100)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecError(
            f"study name {name!r} is not allowed; use letters, digits, '.', '_' and '-' "
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
        data_dir: where the data lies (else ``$HPO32_DATA_DIR``, else the Keras cache).
        engine: the search engine.
        sampler, pruner: Optuna's sampler and pruner.
        budget: wall-clock seconds for the whole study, across resumes.
        trial_budget: wall-clock seconds per trial.
        n_trials: finished trials the study should reach.
        epochs: epochs per trial.
        train_limit, val_limit: stratified subsets of the training and validation images.
        val_fraction: share of the training images held out for validation.
        seed: base random seed.
        weights: DenseNet121 ImageNet weights file for transfer learning and fine-tuning.
        precision: ``auto`` (mixed precision where the hardware runs it natively),
            ``float32``, ``bfloat16`` or ``float16``.
        epoch_images: images per epoch, when fewer than the training set: the unit of
            fidelity that pruners judge (low-fidelity early epochs); None means full epochs.
        warm_start: configs the study tries first (Optuna engine), as a user of Optuna
            would ``enqueue_trial`` them: each a mapping of parameter values, the parameters
            it leaves out at the space's defaults, so ``{}`` is the default config.
        space: ``{"base": "default", "params": {...}}`` or a full ``{"params": {...}}``.
        space_version: 2 for studies made with the training-recipe parameters
            (:data:`hpo32.search.space.RECIPE_PARAMS`); a study stored before them reads 1 and
            keeps today's recipe: those parameters are fixed at their defaults.

    A preset or spec file may also hold ``machine: {cpu: {...}, gpu: {...}}``: the settings
    for the kind of machine it runs on (:func:`hpo32.search.hardware.machine_kind`), laid over
    the rest when the spec is read, so a study records what it ran with.
    """

    description: str = ""
    dataset: str = "cifar10"
    classes: int | list[int | str] | None = None
    data_dir: str | None = None
    engine: str = "optuna"
    sampler: str = "tpe"
    pruner: str = "median"
    budget: float | None = None
    trial_budget: float | None = None
    n_trials: int | None = None
    epochs: int = 5
    train_limit: int | None = None
    val_limit: int | None = None
    val_fraction: float = 0.1
    seed: int = 0
    weights: str | None = None
    precision: str = "auto"
    epoch_images: int | None = None
    warm_start: list[dict[str, Any]] | None = None
    space: dict[str, Any] = field(default_factory=lambda: {"base": "default"})
    space_version: int = 2

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "spec") -> StudySpec:
        """Reads and validates a spec mapping (budgets may be ``10m``-style strings).

        Raises:
            SpecError: unknown keys, bad values or an invalid space.
        """
        data = _for_this_machine(data, source)
        known = {f.name for f in fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise SpecError(
                f"unknown key '{unknown[0]}' in {source}; known keys: {', '.join(sorted(known))}."
            )
        values = dict(data)
        for key in ("budget", "trial_budget"):
            if key in values:
                values[key] = parse_duration(values[key], key.replace("_", " "))
        spec = cls(**values)
        spec.validate()
        return spec

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
        if self.warm_start is None:
            return []
        if not isinstance(self.warm_start, list):
            raise SpecError("warm_start must be a list of configs, e.g. [{}, {batch_norm: true}].")
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for k, entry in enumerate(self.warm_start, 1):
            if not isinstance(entry, Mapping):
                raise SpecError(
                    f"warm_start config {k} must be a mapping of parameter values, got {entry!r}."
                )
            try:
                if "study" in entry:
                    out += _from_study(k, entry, space, best_of)
                    continue
                partial = dict(entry)
                if "config" in partial:
                    partial = _named(k, partial, space)
                out.append((space.complete(partial), {}))
            except SpaceError as exc:
                raise SpecError(f"warm_start config {k}: {exc}") from None
        return out

    def validate(self) -> None:
        """Raises SpecError for any invalid setting (the space included)."""
        from hpo32.search.backends.optuna_engine import PRUNERS, SAMPLERS
        from hpo32.search.training import PRECISIONS

        if not (self.dataset in DATASETS or str(self.dataset).startswith("folder:")):
            raise SpecError(
                f"unknown dataset '{self.dataset}'; use cifar10, imagenet32 or folder:PATH."
            )
        if self.engine not in ENGINES:
            raise SpecError(f"unknown engine '{self.engine}'; use one of {', '.join(ENGINES)}.")
        if self.sampler not in SAMPLERS:
            raise SpecError(f"unknown sampler '{self.sampler}'; use one of {', '.join(SAMPLERS)}.")
        if self.pruner not in PRUNERS:
            raise SpecError(f"unknown pruner '{self.pruner}'; use one of {', '.join(PRUNERS)}.")
        if self.precision not in PRECISIONS:
            raise SpecError(
                f"unknown precision '{self.precision}'; use one of {', '.join(PRECISIONS)}."
            )
        for key in ("n_trials", "epochs", "train_limit", "val_limit", "epoch_images"):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                flag = key.replace("_", "-")
                raise SpecError(f"{flag} must be a positive integer, got {value!r}.")
        for key in ("budget", "trial_budget"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, (int, float)) or value <= 0):
                raise SpecError(f"{key.replace('_', ' ')} must be positive, got {value!r}.")
        if not 0 < self.val_fraction < 1:
            raise SpecError(f"val_fraction must lie between 0 and 1, got {self.val_fraction}.")
        if not isinstance(self.space, Mapping):
            raise SpecError("the spec's 'space' must be a mapping with 'base' and/or 'params'.")
        space = self.build_space()
        if self.warm_start and self.engine != "optuna":
            raise SpecError(
                f"warm_start works with the optuna engine, not '{self.engine}'; "
                "remove it or use --engine optuna."
            )
        self.warm_start_configs(space)


#: Reads another study's best configs: ``best_of(name, top)`` -> [(trial number, config)];
#: raises SpecError when there is no such study.
BestOf = Callable[[str, int], list[tuple[int, dict[str, Any]]]]


def _named(k: int, entry: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The ``{config: NAME, ...}`` entry ``k`` of warm_start: the named config as ``space``
    adopts it, the entry's other values over it (those must fit the space)."""
    from hpo32.search.space import named_configs

    over = {n: v for n, v in entry.items() if n != "config"}
    known = named_configs()
    if entry["config"] not in known:
        raise SpecError(
            f"warm_start config {k} names unknown config {entry['config']!r}; use one of "
            f"{', '.join(known)}."
        )
    config = space.adopt({**known[entry["config"]], **over})
    for name, value in over.items():
        if name not in space:
            raise SpaceError(f"no parameter named '{name}' in the space.")
        if config.get(name) != value:
            raise SpaceError(f"config value {value!r} of '{name}' is out of range or inactive.")
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
        raise SpecError(f"warm_start config {k}: top must be a positive integer, got {top!r}.")
    if best_of is None:  # checked when the study is made
        return []
    return [
        (space.adopt(config), {"warm_start_from": {"study": entry["study"], "trial": number}})
        for number, config in best_of(entry["study"], top)
    ]


def _for_this_machine(data: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """``data`` with its ``machine`` section for this kind of machine laid over the rest."""
    if "machine" not in data:
        return data
    from hpo32.search.hardware import machine_kind

    sections = data["machine"]
    kind = machine_kind()
    if not isinstance(sections, Mapping) or not all(
        isinstance(v, Mapping) for v in sections.values()
    ):
        raise SpecError(f"'machine' in {source} must map cpu and/or gpu to settings.")
    if kind not in sections:
        raise SpecError(
            f"{source} has no settings for a {kind} machine (it has {', '.join(sections)}); "
            "pick another preset."
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
    when its ``machine`` section names this kind, False when it names only others, None
    when it has no such section (it runs the same everywhere)."""
    from hpo32.search.hardware import machine_kind

    out: dict[str, tuple[str, bool | None]] = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        data = load_mapping(path)
        sections = data.get("machine")
        fits = machine_kind() in sections if isinstance(sections, Mapping) else None
        out[path.stem] = (str(data.get("description", "")), fits)
    return out


def load_preset(name: str) -> StudySpec:
    """Reads preset ``name`` from :data:`PRESET_DIR`.

    Raises:
        SpecError: no such preset, or it is invalid.
    """
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"unknown preset '{name}'; choose one of {', '.join(list_presets())}.")
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
