"""The first config of a search sized for this machine from its measured training rate.

A preset's first warm-start config is a known-good network (airbench94's layout), but one
width does not suit every machine: in 13 minutes a CPU with native bfloat16 trains it for
about 9 epochs, an AVX2 CPU without bfloat16 for 1.4 to 4, a GPU for dozens (docs/
BENCHMARKS.md). Too few epochs leave it under-trained; too many waste what a wider network
would have used. With ``first_epochs`` set, the search times a few training steps of that
config on the loaded data (:func:`hpo32.search.training.probe_rate`) before the study is
created, and scales all its group widths by the widest factor of :data:`WIDTH_SCALES` whose
estimated rate trains ``first_epochs`` epochs within the first trial's time.

A network's cost per image grows with its widths to the power
:data:`WIDTH_COST_EXPONENT` rather than 2 (narrow layers use the machine less well): fitted to
airbench94's layout at full, three-quarter and half widths in float32 on a 2-core CPU, which
trained 266, 418 and 852 images/s (docs/BENCHMARKS.md, "Sizing cifar10-fast for a CPU
without bfloat16").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpo32.search.space import Int, SearchSpace

__all__ = ["WIDTH_SCALES", "Sizing", "choose_scale", "scaled_config", "size_first_config"]

#: Factors the group widths may be scaled by, widest first. None goes below 0.375: at a
#: quarter of airbench94's widths the network, not its epochs, would limit what it learns;
#: none above 1.5, so that a long budget goes to epochs as well as to width (x1.5 is the
#: 96/384/384 variation the CIFAR-10 presets already try).
WIDTH_SCALES = (1.5, 1.25, 1.0, 0.75, 0.625, 0.5, 0.375)
#: Images/s at widths scaled by ``s`` are about ``s ** -WIDTH_COST_EXPONENT`` times those at
#: the config's own widths.
WIDTH_COST_EXPONENT = 1.7
#: The share of a trial's time that trains: the rest traces the graph and validates after
#: each epoch.
TRAINING_SHARE = 0.9
#: Widths are rounded to multiples of this.
WIDTH_STEP = 8


@dataclass(frozen=True)
class Sizing:
    """What sizing found: the rate of the config as given, the factor chosen, and the
    epochs the first trial is expected to train at that factor."""

    images_per_second: float
    scale: float
    expected_epochs: float

    def attrs(self) -> dict[str, Any]:
        """The user attribute the first trial records."""
        return {
            "sizing": {
                "probe_images_per_second": round(self.images_per_second, 1),
                "width_scale": self.scale,
                "expected_epochs": round(self.expected_epochs, 1),
            }
        }


def width_params(config: Mapping[str, Any]) -> list[str]:
    """The group widths a config has (``width_1`` .. ``width_N`` of the resnet family)."""
    if config.get("family") != "resnet":
        return []
    return [f"width_{k}" for k in range(1, int(config.get("res_groups", 0)) + 1)]


def choose_scale(rate: float, seconds: float, epochs: float, epoch_images: int) -> Sizing:
    """The widest :data:`WIDTH_SCALES` factor at which ``epochs`` epochs of
    ``epoch_images`` fit in ``seconds`` (of which :data:`TRAINING_SHARE` trains), given
    ``rate`` images/s at the config's own widths; the narrowest when none fits."""
    for scale in WIDTH_SCALES:
        expected = rate * scale**-WIDTH_COST_EXPONENT * seconds * TRAINING_SHARE / epoch_images
        if expected >= epochs:
            break
    return Sizing(rate, scale, expected)


def scaled_config(config: Mapping[str, Any], scale: float, space: SearchSpace) -> dict[str, Any]:
    """``config`` with its group widths times ``scale``, rounded to multiples of
    :data:`WIDTH_STEP` (at least one step) and kept within the space's ranges."""
    out = dict(config)
    for name in width_params(config):
        width = max(WIDTH_STEP, WIDTH_STEP * round(int(config[name]) * scale / WIDTH_STEP))
        param = space[name] if name in space else None
        if isinstance(param, Int):
            width = min(max(width, param.low), param.high)
            width = param.low + (width - param.low) // param.step * param.step
        out[name] = width
    return out


def size_first_config(
    warm: list[tuple[dict[str, Any], dict[str, Any]]],
    splits: Any,
    space: SearchSpace,
    *,
    epochs: float,
    seconds: float,
    epoch_images: int | None = None,
    precision: str = "auto",
    seed: int = 0,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], Sizing | None]:
    """``warm`` (configs with their user attributes, the first tried first) with the first
    config's widths sized to train ``epochs`` epochs in ``seconds`` on this machine, and what
    sizing found; unchanged, with None, when the first config has no group widths or no
    time is given."""
    from hpo32.search.training import probe_rate

    if not warm or not width_params(warm[0][0]) or not (seconds > 0 and math.isfinite(seconds)):
        return warm, None
    config, attrs = warm[0]
    rate = probe_rate(config, splits, precision=precision, seed=seed)
    sizing = choose_scale(rate, seconds, epochs, epoch_images or len(splits.x_train))
    sized = scaled_config(config, sizing.scale, space)
    space.check_config(sized)
    return [(sized, {**attrs, **sizing.attrs()}), *warm[1:]], sizing
