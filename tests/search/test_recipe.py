"""The training recipe: schedules that end with the trial, EMA, test-time augmentation,
alternating flips, and the budget held back for the final test evaluation."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from hpo32.search.data import make_tf_dataset
from hpo32.search.recipe import (
    SCHEDULES,
    Plan,
    accuracies,
    lr_factor,
    predict_views,
    tta_views,
    view_count,
)
from hpo32.search.space import default_space
from hpo32.search.training import evaluate, train_config
from tests.fixtures import cifar10_splits
from tests.search.engine_helpers import TINY_OVERRIDES


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return cifar10_splits(tmp_path_factory.mktemp("cifar"), n_per_batch=60, n_test=30)


def tiny(**values):
    config = default_space().override(TINY_OVERRIDES).defaults()
    config.update(batch_size=32, **values)
    return config


# -- schedules ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schedule", "start", "end"),
    [("constant", 1.0, 1.0), ("linear", 1.0, 0.0), ("cosine", 1.0, 0.0), ("onecycle", 0.04, 0.0)],
)
def test_schedule_values_at_the_start_and_the_end(schedule, start, end):
    assert lr_factor(schedule, 0.0) == pytest.approx(start)
    assert lr_factor(schedule, 1.0) == pytest.approx(end, abs=1e-12)


def test_schedules_peak_after_their_warmup_and_decay_monotonically():
    for schedule in ("linear", "cosine", "onecycle"):
        assert lr_factor(schedule, 0.2, warmup=0.2) == pytest.approx(1.0)
        ramp = [lr_factor(schedule, p, warmup=0.2) for p in np.linspace(0, 0.2, 9)]
        fall = [lr_factor(schedule, p, warmup=0.2) for p in np.linspace(0.2, 1, 17)]
        assert ramp == sorted(ramp) and fall == sorted(fall, reverse=True)
    assert lr_factor("linear", 0.1, warmup=0.2) == pytest.approx(0.5)
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5)
    assert lr_factor("onecycle", 0.25) == pytest.approx(1.0)  # peak at a quarter by default
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        lr_factor("step", 0.5)
    assert set(SCHEDULES) == set(default_space()["lr_schedule"].choices)


def test_a_refit_plan_reaches_the_end_value_within_one_step_of_the_cut():
    plan = Plan(planned_steps=1000)
    for _ in range(100):
        plan.steps_done += 1
    plan.fit_to(steps_left=50.7)  # a deadline in 50 steps' time
    assert plan.refit and plan.total_steps == 150
    factors = []
    while plan.steps_done < plan.total_steps:
        factors.append(lr_factor("linear", plan.progress()))
        plan.steps_done += 1
    assert factors[-1] == 0.0 and factors[-2] > 0.0
    plan.fit_to(steps_left=10**6)  # a later estimate never plans past the plan
    assert plan.total_steps == 1000 and not plan.refit


def test_a_trial_cut_by_its_budget_ends_its_schedule_at_the_cut(splits):
    config = tiny(lr_schedule="linear", learning_rate=0.01)
    result = train_config(
        config, splits, epochs=500, trial_deadline=time.monotonic() + 6, precision="float32"
    )
    assert result.stopped_by == "trial_budget"
    assert result.schedule_refit
    batches = -(-len(splits.x_train) // 32)
    assert result.images_trained < result.planned_images == 500 * batches * 32
    # at its end value but for a few steps of timing noise: this tiny model's steps take
    # about 10 ms, so a busy machine's scheduling moves the cut by steps (the exact rule is
    # test_a_refit_plan_reaches_the_end_value_within_one_step_of_the_cut)
    assert result.lr_final_factor <= 0.05
    assert result.model.optimizer.learning_rate.numpy() == pytest.approx(0.01)  # as configured


def test_a_trial_that_fits_its_budget_is_not_refit(splits):
    result = train_config(
        tiny(lr_schedule="cosine"),
        splits,
        epochs=2,
        trial_deadline=time.monotonic() + 600,
        precision="float32",
    )
    assert result.stopped_by is None and not result.schedule_refit
    assert result.lr_final_factor == pytest.approx(0.0, abs=1e-9)
    assert result.planned_images == 2 * -(-len(splits.x_train) // 32) * 32


# -- the final evaluation inside the budget ------------------------------------------------
def test_the_search_deadline_holds_back_the_final_test_evaluation(splits):
    def run(reserve_images):
        return train_config(
            tiny(),
            splits,
            epochs=10_000,
            search_deadline=time.monotonic() + 8,
            reserve_images=reserve_images,
            precision="float32",
        )

    free, reserved = run(0), run(4_000_000)
    assert free.stopped_by == reserved.stopped_by == "search_budget"
    # predicting 4 million images takes seconds on the recorded speed: trained for less
    assert reserved.images_trained < free.images_trained * 0.8


# -- test-time augmentation ---------------------------------------------------------------
def _flip_invariant_model(classes: int):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)  # a mirror image has the same mean
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_a_flip_invariant_model_scores_the_same_with_and_without_flip_tta(splits):
    model = _flip_invariant_model(splits.num_classes)
    plain = evaluate(model, splits.x_test, splits.y_test)
    flipped = evaluate(model, splits.x_test, splits.y_test, "flip")
    assert plain == pytest.approx(flipped)


def test_the_prediction_is_the_mean_of_the_views(splits):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    x = splits.x_test[:12]
    views = tta_views(x, "flip_translate")
    assert len(views) == view_count("flip_translate") == 6
    assert np.array_equal(views[1], x[:, :, ::-1])
    assert np.array_equal(views[2][:, 1:, 1:], x[:, :-1, :-1])  # one pixel down-right
    each = [model.predict(v.astype("float32") / 255.0, verbose=0) for v in views]
    assert np.allclose(predict_views(model, x, "flip_translate"), np.mean(each, axis=0), atol=1e-5)
    assert not np.allclose(each[0], each[1], atol=1e-5)  # the views do differ


def test_top5_counts_a_true_class_among_the_five_most_probable():
    probs = np.array([[0.5, 0.2, 0.1, 0.08, 0.07, 0.05], [0.5, 0.2, 0.1, 0.08, 0.07, 0.05]])
    assert accuracies(probs, np.array([0, 5])) == {"accuracy": 0.5, "top5": 0.5}
    assert accuracies(probs, np.array([4, 1])) == {"accuracy": 0.0, "top5": 1.0}


def test_validation_records_top5_and_uses_the_views(splits):
    result = train_config(tiny(tta="flip"), splits, epochs=1, precision="float32")
    assert len(result.history["val_top5"]) == 1
    assert result.history["val_top5"][0] >= result.history["val_accuracy"][0]
    assert result.eval_images == 2 * len(splits.x_val)


def test_ema_weights_are_the_ones_validated_and_kept(splits):
    result = train_config(tiny(ema=True, ema_momentum=0.9), splits, epochs=2, precision="float32")
    probs = predict_views(result.model, splits.x_val)
    # the model ends with the averaged weights, those that validated last
    assert accuracies(probs, splits.y_val)["accuracy"] == pytest.approx(result.val_accuracy[-1])
    assert result.model.optimizer.use_ema


# -- augmentation ---------------------------------------------------------------------------
def test_alternating_flips_show_each_image_the_other_way_every_time():
    x = np.zeros((8, 4, 4, 1), np.uint8)
    x[:, :, 0] = 255  # bright left column: a flipped image is bright on the right
    ds = make_tf_dataset(x, np.arange(8), 8, training=True, augment_flip=True,
                         flip_mode="alternating", seed=3).repeat(4)  # fmt: skip
    seen: dict[int, list[bool]] = {i: [] for i in range(8)}
    for images, labels in ds:
        for img, label in zip(images.numpy(), labels.numpy(), strict=True):
            seen[int(label)].append(bool(img[0, -1, 0] > 0.5))
    for flips in seen.values():
        assert len(flips) == 4
        assert all(a != b for a, b in zip(flips, flips[1:], strict=False))
    assert len({flips[0] for flips in seen.values()}) == 2  # the first draw is at random


def test_crop_pixels_bounds_the_shift():
    x = np.zeros((64, 8, 8, 1), np.uint8)
    x[:, 4, 4] = 255  # one bright pixel: where it lands is the shift
    ds = make_tf_dataset(x, np.zeros(64), 64, training=True, augment_crop=True, crop_pixels=1)
    ((images, _),) = ds.take(1)
    rows, cols = np.nonzero(images.numpy()[..., 0] > 0.5)[1:]
    assert set(np.abs(rows - 4)) <= {0, 1} and set(np.abs(cols - 4)) <= {0, 1}
    assert len(set(rows)) > 1


def test_no_trial_starts_when_the_final_evaluation_would_not_fit():
    from hpo32.search.engines.base import SearchContext
    from hpo32.search.training import TEST_OVERHEAD_S

    ctx = SearchContext(space=default_space(), splits=None, epochs=1, test_images=1000)
    ctx.search_deadline = time.monotonic() + 8
    assert ctx.test_reserve() == 0.0 and not ctx.budget_spent()  # nothing measured yet
    ctx.eval_per_image, ctx.test_views = 0.001, 6  # as a six-view trial's validation measured
    assert ctx.test_reserve() == pytest.approx(6.0 + TEST_OVERHEAD_S)
    assert ctx.budget_spent()
    ctx.search_deadline = time.monotonic() + 20
    assert not ctx.budget_spent()
