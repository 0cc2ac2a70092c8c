"""``family: resnet``: airbench94's layout and its variations as configs of the one space."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from hpo32.search.models import InvalidConfig, build_model, init_whitening
from hpo32.search.space import AIRBENCH94_CONFIG, default_space

RESNET = default_space().override({"family": "resnet"})


def airbench_count(classes: int) -> int:
    """airbench94's weights counted by hand: stem, three groups of two 3x3 convs (no bias),
    batch norms without scale (bias, moving mean and variance), the softmax layer."""
    stem = 2 * 2 * 3 * 24 + 24
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 + 256 * 256 + 256 * 256)
    norms = 2 * 3 * (64 + 256 + 256)  # two per group
    return stem + convs + norms + 256 * classes + classes


def test_airbench94_is_a_config_of_the_space_with_airbench_s_parameter_count():
    RESNET.check_config(AIRBENCH94_CONFIG)
    model = build_model(AIRBENCH94_CONFIG, (32, 32, 3), 10)
    assert model.count_params() == airbench_count(10) == 1_973_954
    assert model.output_shape == (None, 10)
    assert model.get_layer("stem").output.shape[1:3] == (31, 31)  # unpadded 2x2
    keras.backend.clear_session()


@pytest.mark.parametrize("groups", [2, 4])
def test_groups_widths_and_residual_adds_shape_the_network(groups):
    config = dict(RESNET.complete({"res_groups": groups, "residual": True, "group_convs": 2}))
    model = build_model(config, (32, 32, 3), 7)
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(adds) == len(pools) == groups
    assert adds[-1].output.shape[-1] == config[f"width_{groups}"]
    assert model.output_shape == (None, 7)
    keras.backend.clear_session()


def test_too_many_groups_for_the_image_is_an_invalid_config():
    config = RESNET.complete({"res_groups": 4})
    with pytest.raises(InvalidConfig, match="pool the 8x8 image below one pixel"):
        build_model(config, (8, 8, 3), 10)


def test_dirac_init_starts_each_conv_as_the_identity_on_its_first_channels():
    config = dict(AIRBENCH94_CONFIG, res_groups=2, dirac_init=True)
    model = build_model(config, (32, 32, 3), 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][1:]
    for conv in convs:
        kernel = conv.kernel.numpy()
        n = min(kernel.shape[2], kernel.shape[3])
        assert np.array_equal(kernel[1, 1, :, :n], np.eye(n, dtype=kernel.dtype))
        assert not kernel[0, 0, :, :n].any()
    keras.backend.clear_session()


def test_whitening_decorrelates_patches_and_freezes_the_stem():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (200, 32, 32, 1))
    images = np.concatenate([base, base // 2 + 60, 255 - base], axis=-1).astype(np.uint8)
    model = build_model(AIRBENCH94_CONFIG, (32, 32, 3), 10)
    assert init_whitening(model, images)
    stem = model.get_layer("stem")
    assert not stem.trainable
    out = keras.Model(model.input, stem.output).predict(images[:50] / 255.0, verbose=0)
    features = out.reshape(-1, out.shape[-1])[:, :12].astype(np.float64)
    assert np.allclose(features.mean(axis=0), 0.0, atol=0.05)
    cov = np.cov(features, rowvar=False)
    # correlated channels become uncorrelated, unit-variance features (eps aside)
    variances = np.diag(cov)
    off = cov - np.diag(variances)
    assert np.abs(off).max() < 0.1 * variances.max()
    assert np.array_equal(stem.kernel.numpy()[..., 12:24], -stem.kernel.numpy()[..., :12])
    keras.backend.clear_session()
