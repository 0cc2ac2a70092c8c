"""The first config sized for the machine: a few timed steps give its rate, and its group
widths are scaled to the widest that trains the wanted epochs in its trial's time."""

from __future__ import annotations

import math

import pytest

from hpo32.search import sizing
from hpo32.search.sizing import (
    WIDTH_COST_EXPONENT,
    WIDTH_SCALES,
    choose_scale,
    scaled_config,
    size_first_config,
)
from hpo32.search.space import AIRBENCH94_CONFIG, MAXNET_CONFIG, default_space
from hpo32.search.training import probe_rate
from tests.fixtures import cifar10_splits

RESNET = default_space().override({"family": "resnet"})
#: A resnet small enough that a step takes milliseconds on the 32x32 fixtures.
TINY_RESNET = {
    **{k: v for k, v in AIRBENCH94_CONFIG.items() if k != "width_3"},
    "res_groups": 2, "stem_width": 8, "width_1": 16, "width_2": 32, "batch_size": 32,
    "tta": "none", "stem_whiten": False,
}  # fmt: skip
TINY_SPACE = RESNET.override(
    {"width_1": {"low": 8, "high": 32}, "width_2": {"low": 8, "high": 64}, "stem_width": 8,
     "batch_size": 32}
)  # fmt: skip


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return cifar10_splits(tmp_path_factory.mktemp("cifar"))


def epochs_at(rate: float, scale: float, seconds: float, images: int) -> float:
    return rate * scale**-WIDTH_COST_EXPONENT * seconds * sizing.TRAINING_SHARE / images


def test_the_widest_scale_that_trains_the_epochs_is_chosen():
    # 48,000 images, 783 s: airbench94's rates measured on three CPUs (docs/BENCHMARKS.md)
    bf16 = choose_scale(615.0, 783.0, 8, 48_000)  # native bfloat16: 9.0 epochs as it is
    assert bf16.scale == 1.0 and bf16.expected_epochs == pytest.approx(9.03, abs=0.01)
    capped = choose_scale(266.0, 783.0, 8, 48_000)  # float32 at AVX2: 3.9 epochs as it is
    assert capped.scale == 0.625
    assert epochs_at(266.0, 0.75, 783.0, 48_000) < 8 <= capped.expected_epochs
    hour = choose_scale(542.0, 3132.0, 8, 48_000)  # an hour on the bfloat16 CPU: the widest
    assert hour.scale == WIDTH_SCALES[0] == 1.5 and hour.expected_epochs >= 8
    slow = choose_scale(10.0, 783.0, 8, 48_000)  # nothing fits: the narrowest
    assert slow.scale == WIDTH_SCALES[-1] and slow.expected_epochs < 8
    fast = choose_scale(1e6, 120.0, 8, 48_000)  # a GPU: the widest
    assert fast.scale == WIDTH_SCALES[0]


def test_scaled_widths_are_rounded_to_eights_and_kept_in_the_space():
    three_quarters = scaled_config(AIRBENCH94_CONFIG, 0.75, RESNET)
    assert [three_quarters[f"width_{k}"] for k in (1, 2, 3)] == [48, 192, 192]
    assert three_quarters["stem_width"] == AIRBENCH94_CONFIG["stem_width"]  # groups only
    narrow = RESNET.override({"width_1": {"low": 40, "high": 128}})
    assert scaled_config(AIRBENCH94_CONFIG, 0.375, narrow)["width_1"] == 40  # its low bound
    tight = RESNET.override({"width_3": {"low": 32, "high": 320}})
    assert scaled_config(AIRBENCH94_CONFIG, 1.5, tight)["width_3"] == 320  # its high bound
    RESNET.check_config(scaled_config(AIRBENCH94_CONFIG, 0.625, RESNET))
    assert scaled_config(MAXNET_CONFIG, 0.5, default_space()) == MAXNET_CONFIG  # no groups


def test_the_probe_measures_a_positive_rate_and_sizing_rescales_the_first_config(splits):
    rate = probe_rate(TINY_RESNET, splits, seconds=0.5, max_steps=4)
    assert math.isfinite(rate) and rate > 0
    second = (dict(TINY_RESNET, width_1=8), {})
    warm = [(dict(TINY_RESNET), {"note": "kept"}), second]
    # a trial of a microsecond cannot train anything: the narrowest widths
    sized, found = size_first_config(warm, splits, TINY_SPACE, epochs=8, seconds=1e-6)
    assert found is not None and found.scale == WIDTH_SCALES[-1]
    assert (sized[0][0]["width_1"], sized[0][0]["width_2"]) == (8, 16)  # 16 and 32 x 0.375
    assert sized[0][1]["note"] == "kept"
    assert sized[0][1]["sizing"]["width_scale"] == WIDTH_SCALES[-1]
    assert sized[0][1]["sizing"]["probe_images_per_second"] > 0
    assert sized[1] == second  # only the first config is sized
    # a day for one epoch: the widest
    wide, found = size_first_config(warm, splits, TINY_SPACE, epochs=1, seconds=86_400.0)
    assert found is not None and found.scale == WIDTH_SCALES[0]
    assert (wide[0][0]["width_1"], wide[0][0]["width_2"]) == (24, 48)  # 16 and 32 x 1.5
    # nothing to size: a config without group widths, or no time given
    plain = [(dict(MAXNET_CONFIG), {})]
    assert size_first_config(plain, splits, default_space(), epochs=8, seconds=60.0) == (
        plain, None
    )  # fmt: skip
    assert size_first_config(warm, splits, TINY_SPACE, epochs=8, seconds=math.inf)[1] is None
