"""Keras models and optimizers from plain config values (a config of :mod:`hpo32.search.space`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from hpo32.search.recipe import SCHEDULES, TTA_MODES

if TYPE_CHECKING:
    import keras
    import numpy as np

__all__ = [
    "ACTIVATIONS",
    "DENSENET_WEIGHTS_FILE",
    "FAMILIES",
    "IMAGE_SIZE",
    "OPTIMIZERS",
    "InvalidConfig",
    "WeightsMissing",
    "build_model",
    "build_optimizer",
    "check_config",
    "check_value",
    "compile_model",
    "init_whitening",
    "output_size",
    "required",
    "resolve_weights",
    "takes",
]

#: The model families ``family`` may name, each with its builder below.
FAMILIES = ("cnn", "resnet", "alexnet", "densenet121")
#: The optimizers :func:`build_optimizer` makes.
OPTIMIZERS = ("adamax", "adam", "adamw", "sgd", "rmsprop")
#: The activations the builders take: Keras' element-wise activations without arguments.
ACTIVATIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "softplus",
    "softsign",
    "linear",
)
#: The side of every dataset's images (CIFAR-10, ImageNet32, class folders resized).
IMAGE_SIZE = 32

#: The file Keras' DenseNet121 loads its ImageNet weights (without the top) from.
DENSENET_WEIGHTS_FILE = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class InvalidConfig(ValueError):
    """A config that cannot be built (e.g. the image shrinks to nothing); the trial fails."""


class WeightsMissing(FileNotFoundError):
    """Pretrained weights are needed but not found; the message names the file and where."""


def resolve_weights(path: str | None = None) -> str:
    """The DenseNet121 ImageNet weights file: ``path`` if given, else the Keras cache.

    Raises:
        WeightsMissing: the file is not there (hpo32 never downloads it during a search).
    """
    import os
    from pathlib import Path

    if path:
        if not Path(path).is_file():
            raise WeightsMissing(
                f"weights file '{path}' does not exist; pass the path of "
                f"{DENSENET_WEIGHTS_FILE} to --weights."
            )
        return str(path)
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    cached = home / "models" / DENSENET_WEIGHTS_FILE
    if cached.is_file():
        return str(cached)
    raise WeightsMissing(
        f"pretrained DenseNet121 weights not found: put {DENSENET_WEIGHTS_FILE} (from the "
        f"Keras applications release) in {cached.parent} or pass --weights PATH."
    )


def _activation(name: str):
    import keras

    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2)
    return keras.layers.Activation(name)


def build_model(
    config: Mapping[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    weights: str | None = None,
) -> keras.Model:
    """Builds the network a config describes: its ``family`` picks the builder.

    Args:
        config: plain values for the space's parameters (see
            :func:`hpo32.search.space.default_space`).
        input_shape: e.g. ``(32, 32, 3)``.
        num_classes: size of the softmax output.
        weights: the DenseNet121 ImageNet weights file for transfer and fine-tuning (else the
            Keras cache, see :func:`resolve_weights`).

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        InvalidConfig: the config cannot be built.
        WeightsMissing: pretrained weights are needed and not found.
    """
    family = config.get("family", "cnn")
    if family == "cnn":
        return build_cnn(config, input_shape, num_classes)
    if family == "resnet":
        return build_resnet(config, input_shape, num_classes)
    if family == "alexnet":
        return build_alexnet(config, input_shape, num_classes)
    if family == "densenet121":
        return build_densenet121(config, input_shape, num_classes, weights)
    raise InvalidConfig(f"unknown model family '{family}'; use one of {', '.join(FAMILIES)}.")


def build_cnn(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
    """Builds the conv-block network a config describes.

    Each block holds ``convs_per_block`` convolutions (conv, optional batch norm, activation);
    with ``padding: valid_last`` the last convolution of a block is unpadded, as in the report's
    MaxNet. A pooling layer and a dropout layer close each block. Then flatten, ``fc_layers``
    dense layers each followed by its activation and dropout, and a softmax output. Inputs are
    images already normalized to [0, 1] (see :func:`hpo32.search.data.normalize`).

    Args:
        config: plain values for the space's parameters (see
            :func:`hpo32.search.space.default_space`).
        input_shape: e.g. ``(32, 32, 3)``.
        num_classes: size of the softmax output.

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        InvalidConfig: the convolutions and poolings would shrink the image below 1 pixel.
    """
    import keras
    from keras import layers

    kernel = int(config["kernel_size"])
    valid_last = config.get("padding") == "valid_last"
    pooling = config.get("pooling", "max")
    pool_cls = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D
    size = min(input_shape[0], input_shape[1])

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block in range(1, int(config["conv_blocks"]) + 1):
        filters = int(config[f"filters_{block}"])
        n_convs = int(config["convs_per_block"])
        for i in range(n_convs):
            padding = "valid" if valid_last and i == n_convs - 1 else "same"
            if padding == "valid":
                size -= kernel - 1
            if size < 1:
                raise InvalidConfig(
                    f"conv block {block} shrinks the {input_shape[0]}x{input_shape[1]} image "
                    "below one pixel; use fewer blocks, padding 'same' or kernel 3."
                )
            x = layers.Conv2D(filters, kernel, padding=padding)(x)
            if config.get("batch_norm"):
                x = _batch_norm(config)(x)
            x = _activation(config["activation"])(x)
        if size >= 2:
            x = pool_cls(pool_size=2)(x)
            size //= 2
        x = layers.Dropout(float(config.get(f"block_dropout_{block}", 0.0)))(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(x, config, num_classes), name="hpo32_cnn")


def _head(x: keras.KerasTensor, config: Mapping[str, Any], num_classes: int) -> keras.KerasTensor:
    """FC layers ``fc_units_k`` with activation and ``fc_dropout_k``, then the softmax."""
    from keras import layers

    for k in range(1, int(config.get("fc_layers", 0)) + 1):
        x = layers.Dense(int(config[f"fc_units_{k}"]))(x)
        x = _activation(config["activation"])(x)
        x = layers.Dropout(float(config.get(f"fc_dropout_{k}", 0.0)))(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)


def _batch_norm(config: Mapping[str, Any]):
    """Batch norm with the config's ``bn_momentum`` (Keras' sense: the share of the old
    moving statistics kept; default 0.99) and ``bn_scale`` (``learned``, or ``frozen`` at 1)."""
    from keras import layers

    return layers.BatchNormalization(
        momentum=float(config.get("bn_momentum", 0.99)),
        scale=config.get("bn_scale", "learned") != "frozen",
    )


def build_resnet(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
    """Builds the residual conv-group network of ``family: resnet`` (airbench94's layout).

    A stem convolution of ``stem_width`` filters and kernel ``stem_kernel`` (unpadded, with
    bias, then the activation; :func:`init_whitening` may set it to patch whitening and
    freeze it), then ``res_groups`` groups, group k: a 3x3 convolution of ``width_k``
    filters, 2x2 max pooling, batch norm, activation, then ``group_convs`` more 3x3
    convolutions each with batch norm and activation, their output added to the group's
    first activation when ``residual``. With ``dirac_init`` each convolution starts as the
    identity on its first input channels. A global max or average pool (``head_pool``),
    ``head_dropout``, and the softmax dense layer, its logits scaled by ``logit_scale``.

    Raises:
        InvalidConfig: the poolings would shrink the image below one pixel.
    """
    import keras
    from keras import layers

    act = config.get("activation", "gelu")
    stem_kernel = int(config.get("stem_kernel", 2))
    size = min(input_shape[0], input_shape[1]) - stem_kernel + 1
    groups = int(config["res_groups"])
    if size >> groups < 1:
        raise InvalidConfig(
            f"{groups} conv groups pool the {input_shape[0]}x{input_shape[1]} image below "
            "one pixel; use fewer groups."
        )
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(int(config["stem_width"]), stem_kernel, padding="valid", name="stem")(inputs)
    x = _activation(act)(x)
    convs = []

    def conv(x: keras.KerasTensor, width: int) -> keras.KerasTensor:
        layer = layers.Conv2D(width, 3, padding="same", use_bias=False)
        convs.append(layer)
        return layer(x)

    for k in range(1, groups + 1):
        width = int(config[f"width_{k}"])
        x = conv(x, width)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = _activation(act)(_batch_norm(config)(x))
        shortcut = x
        for _ in range(int(config.get("group_convs", 1))):
            x = _activation(act)(_batch_norm(config)(conv(x, width)))
        if config.get("residual"):
            x = layers.Add()([x, shortcut])
    pool = layers.GlobalMaxPooling2D if config.get("head_pool", "max") == "max" else None
    x = (pool or layers.GlobalAveragePooling2D)()(x)
    x = layers.Dropout(float(config.get("head_dropout", 0.0)))(x)
    # softmax(W (s x) + b) is softmax(s (W x) + b'): the features are scaled, so the last
    # layer stays the one softmax Dense every family ends with (AutoKeras' head replaces it)
    x = layers.Rescaling(float(config.get("logit_scale", 1.0)), name="logit_scale")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    model = keras.Model(inputs, outputs, name="hpo32_resnet")
    if config.get("dirac_init"):
        for layer in convs:
            _dirac(layer)
    return model


def _dirac(layer: keras.layers.Layer) -> None:
    """Sets a built convolution's first ``min(in, out)`` filters to pass their input channel
    through unchanged (the rest keep their random start), as airbench's dirac init."""
    import numpy as np

    kernel = np.array(layer.kernel.numpy())
    kh, kw, c_in, c_out = kernel.shape
    n = min(c_in, c_out)
    kernel[:, :, :, :n] = 0.0
    kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
    layer.kernel.assign(kernel)


def init_whitening(
    model: keras.Model, images: np.ndarray, eps: float = 5e-4, limit: int = 5000
) -> bool:
    """Sets the stem of a ``resnet`` model to whiten image patches, and freezes it.

    The stem's filters become the eigenvectors of the covariance of ``stem_kernel`` x
    ``stem_kernel`` patches of up to ``limit`` training images (in [0, 1]), scaled by
    1/sqrt(eigenvalue + eps), the largest first, each also negated (airbench's whitening
    layer; filters beyond twice the patch size keep their random start). The bias centres the
    patches. Returns False when the model has no ``stem`` layer.
    """
    import numpy as np

    try:
        stem = model.get_layer("stem")
    except ValueError:
        return False
    kernel = np.array(stem.kernel.numpy())
    k, _, c_in, width = kernel.shape
    x = np.asarray(images[:limit], dtype=np.float32) / 255.0
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    # (N, H', W', C, k, k) -> rows in the kernel's (k, k, C) order
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * c_in).astype(np.float64)
    mean = patches.mean(axis=0)
    cov = np.cov(patches - mean, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    filters = (vectors[:, order] / np.sqrt(values[order] + eps)).T  # (d, d): one filter a row
    filters = np.concatenate([filters, -filters])[:width]
    kernel[..., : len(filters)] = filters.reshape(len(filters), k, k, c_in).transpose(1, 2, 3, 0)
    bias = np.array(stem.bias.numpy())
    bias[: len(filters)] = -filters @ mean
    stem.kernel.assign(kernel)
    stem.bias.assign(bias)
    stem.trainable = False
    return True


def build_alexnet(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
    """The report's AlexNet: images resized to 224x224 inside the model; conv 96 11x11
    stride 4, 256 11x11, 384 3x3, 384 3x3, 256 3x3 (all padded) with 2x2 max-pools after the
    1st, 2nd and 5th; FC 4096, 4096, 1000 each with ``alexnet_dropout``; then the classes."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Resizing(224, 224, name="resize_224")(inputs)
    for filters, kernel, stride, pool in (
        (96, 11, 4, True),
        (256, 11, 1, True),
        (384, 3, 1, False),
        (384, 3, 1, False),
        (256, 3, 1, True),
    ):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same")(x)
        x = _activation(config["activation"])(x)
        if pool:
            x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Flatten()(x)
    for units in (4096, 4096, 1000):
        x = layers.Dense(units)(x)
        x = _activation(config["activation"])(x)
        x = layers.Dropout(float(config.get("alexnet_dropout", 0.4)))(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name="hpo32_alexnet")


def build_densenet121(
    config: Mapping[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    weights: str | None = None,
):
    """DenseNet121 from scratch, as frozen transfer base, or fine-tuned.

    Images are upscaled to ``densenet_input_size`` (DenseNet121 needs at least 32x32) and,
    for the pretrained modes, normalized as ImageNet was. ``transfer`` keeps the first
    ``densenet_keep_layers`` layers of the base, frozen; ``finetune`` also unfreezes the top
    ``densenet_unfreeze_fraction`` of them (its learning rate is scaled by
    ``finetune_lr_scale`` in :func:`compile_model`). A global average pool and the FC head
    (``fc_layers``...) follow.
    """
    import keras
    from keras import layers

    mode = config.get("densenet_mode", "scratch")
    size = int(config.get("densenet_input_size", 32))
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if size != input_shape[0]:
        x = layers.Resizing(size, size, name=f"resize_{size}")(x)
    if mode == "scratch":
        base = keras.applications.DenseNet121(
            include_top=False, weights=None, input_shape=(size, size, 3)
        )
    else:
        x = layers.Normalization(
            mean=_IMAGENET_MEAN, variance=[s * s for s in _IMAGENET_STD], name="imagenet"
        )(x)
        base = keras.applications.DenseNet121(
            include_top=False, weights=resolve_weights(weights), input_shape=(size, size, 3)
        )
        keep = min(int(config.get("densenet_keep_layers", len(base.layers))), len(base.layers))
        if keep < len(base.layers):
            base = keras.Model(base.input, base.layers[keep - 1].output, name="densenet_part")
        unfrozen = 0
        if mode == "finetune":
            unfrozen = round(
                float(config.get("densenet_unfreeze_fraction", 0.0)) * len(base.layers)
            )
        for i, layer in enumerate(base.layers):
            layer.trainable = i >= len(base.layers) - unfrozen if unfrozen else False
    x = base(x, training=False if mode != "scratch" else None)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = _head(x, config, num_classes)
    return keras.Model(inputs, outputs, name=f"hpo32_densenet121_{mode}")


def build_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """Returns the Keras optimizer named by ``config['optimizer']`` at its learning rate.

    ``sgd`` takes ``momentum`` (default 0.9) and ``nesterov`` (default on); ``weight_decay``
    is decoupled (Keras' sense: each step shrinks the weights by rate x decay), default
    1e-4 for ``adamw`` and none for the others, as before the recipe was searchable. With
    ``ema`` the optimizer keeps a moving average of the weights (``ema_momentum``, default
    0.99), which validation, the test and the saved model use.

    Raises:
        InvalidConfig: unknown optimizer name.
    """
    import keras

    lr = float(config["learning_rate"])
    if config.get("densenet_mode") == "finetune":
        lr *= float(config.get("finetune_lr_scale", 1.0))
    name = config["optimizer"]
    decay = config.get("weight_decay", 1e-4 if name == "adamw" else None)
    common: dict[str, Any] = {"learning_rate": lr, "weight_decay": decay}
    if config.get("ema"):
        common.update(use_ema=True, ema_momentum=float(config.get("ema_momentum", 0.99)))
    makers = {
        "adamax": lambda: keras.optimizers.Adamax(**common),
        "adam": lambda: keras.optimizers.Adam(**common),
        "adamw": lambda: keras.optimizers.AdamW(**common),
        "sgd": lambda: keras.optimizers.SGD(
            momentum=float(config.get("momentum", 0.9)),
            nesterov=bool(config.get("nesterov", True)),
            **common,
        ),
        "rmsprop": lambda: keras.optimizers.RMSprop(**common),
    }
    if name not in makers:
        raise InvalidConfig(f"unknown optimizer '{name}'; use one of {', '.join(makers)}.")
    return makers[name]()


def compile_model(model: keras.Model, config: Mapping[str, Any]) -> None:
    """Compiles ``model`` with the config's optimizer and label-smoothed cross-entropy.

    Labels are one-hot (see :func:`hpo32.search.training.train_config`), so the loss and metric are
    Keras built-ins and a saved model loads back without custom objects.
    """
    import keras

    model.compile(
        optimizer=build_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(
            label_smoothing=float(config.get("label_smoothing", 0.0))
        ),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


# -- what the builders take: pure checks, no Keras -----------------------------------------


@dataclass(frozen=True)
class _Takes:
    """The values the builders, the optimizer and the training loop take for one parameter:
    whole numbers or numbers from ``low`` to ``high`` (None: unbounded; ``below``: high
    itself excluded), booleans, or one of ``choices``."""

    kind: str  # "int", "float", "bool" or "choice"
    low: float | None = None
    high: float | None = None
    below: bool = False
    above: bool = False  # low itself excluded
    choices: tuple[str, ...] = ()

    def accepts(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        number = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number) or value != value:
            return False
        if self.low is not None and (value < self.low or (self.above and value == self.low)):
            return False
        return self.high is None or value < self.high or (value == self.high and not self.below)

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        what = "a whole number" if self.kind == "int" else "a number"
        low = 0.0 if self.low is None else self.low
        if self.above:
            start = f"above {low:g}"
        elif self.high is None:
            return f"{what} of at least {low:g}"
        else:
            start = f"from {low:g}"
        if self.high is None:
            return f"{what} {start}"
        return f"{what} {start} to {'below ' if self.below else ''}{self.high:g}"


_SHARE = _Takes("float", 0.0, 1.0, below=True)  # a dropout, a rate kept below 1
_POSITIVE = _Takes("float", 0.0, None, above=True)
_COUNT = _Takes("int", 1)
_DEPTH = _Takes("int", 1, 64)  # blocks, layers, groups: each has its own parameters
_WIDTH = _Takes("int", 1, 1 << 16)  # filters and units
_KERNEL = _Takes("int", 1, IMAGE_SIZE)
_BOOL = _Takes("bool")
_TAKES: dict[str, _Takes] = {
    "family": _Takes("choice", choices=FAMILIES),
    "conv_blocks": _DEPTH,
    "convs_per_block": _DEPTH,
    "kernel_size": _KERNEL,
    "padding": _Takes("choice", choices=("same", "valid_last")),
    "batch_norm": _BOOL,
    "pooling": _Takes("choice", choices=("max", "avg")),
    "fc_layers": _Takes("int", 0, 64),
    "alexnet_dropout": _SHARE,
    "densenet_mode": _Takes("choice", choices=("scratch", "transfer", "finetune")),
    "densenet_input_size": _Takes("int", IMAGE_SIZE),  # DenseNet121 needs 32x32 or more
    "densenet_keep_layers": _COUNT,
    "densenet_unfreeze_fraction": _Takes("float", 0.0, 1.0),
    "finetune_lr_scale": _POSITIVE,
    "stem_kernel": _KERNEL,
    "stem_width": _WIDTH,
    "stem_whiten": _BOOL,
    "res_groups": _DEPTH,
    "group_convs": _Takes("int", 0, 64),
    "residual": _BOOL,
    "dirac_init": _BOOL,
    "head_pool": _Takes("choice", choices=("max", "avg")),
    "head_dropout": _SHARE,
    "logit_scale": _POSITIVE,
    "activation": _Takes("choice", choices=ACTIVATIONS),
    "optimizer": _Takes("choice", choices=OPTIMIZERS),
    "learning_rate": _POSITIVE,
    "batch_size": _COUNT,
    "label_smoothing": _SHARE,
    "augment_flip": _BOOL,
    "augment_crop": _BOOL,
    "lr_schedule": _Takes("choice", choices=SCHEDULES),
    "warmup_fraction": _SHARE,
    "weight_decay": _Takes("float", 0.0),
    "momentum": _SHARE,
    "nesterov": _BOOL,
    "bn_momentum": _SHARE,
    "bn_scale": _Takes("choice", choices=("learned", "frozen")),
    "ema": _BOOL,
    "ema_momentum": _SHARE,
    "flip_mode": _Takes("choice", choices=("random", "alternating")),
    "crop_pixels": _Takes("int", 0, IMAGE_SIZE // 2),
    "tta": _Takes("choice", choices=TTA_MODES),
}
#: The per-block, per-layer and per-group parameters (``filters_3``, ``fc_units_1``, ...).
_INDEXED = re.compile(r"(filters|block_dropout|fc_units|fc_dropout|width)_([1-9][0-9]{0,3})")
_INDEXED_TAKES = {
    "filters": _WIDTH,
    "block_dropout": _SHARE,
    "fc_units": _WIDTH,
    "fc_dropout": _SHARE,
    "width": _WIDTH,
}


def _takes(name: str) -> _Takes | None:
    indexed = _INDEXED.fullmatch(name)
    return _INDEXED_TAKES[indexed.group(1)] if indexed else _TAKES.get(name)


def takes(name: str) -> str | None:
    """What the model builder takes for parameter ``name`` in words (``a whole number of at
    least 1``), or None for a parameter it does not read."""
    found = _takes(name)
    return found.describe() if found else None


def check_value(name: str, value: Any) -> None:
    """Raises InvalidConfig when the builders cannot take ``value`` for parameter ``name``
    (a parameter they do not read takes anything).

    Raises:
        InvalidConfig: e.g. ``batch_size: 0``, ``activation: bogus``, ``optimizer: nadam``.
    """
    from hpo32.search.space import brief

    found = _takes(name)
    if found is not None and not found.accepts(value):
        raise InvalidConfig(f"'{name}' takes {found.describe()}, not {brief(value)}")


def required(config: Mapping[str, Any]) -> dict[str, str]:
    """The parameters the builders need (they have no default) for ``config``'s family and
    counts (``conv_blocks``, ``fc_layers``, ``res_groups``; absent counts as 0), each with
    the reason it is needed.

    ``config`` may be partial: for a space, give its family and each count's largest value.
    """
    family = config.get("family", "cnn")
    out = {n: "training" for n in ("optimizer", "learning_rate", "batch_size")}

    def counted(count: str, prefix: str) -> None:
        value = config.get(count, 0)
        top = value if isinstance(value, int) and not isinstance(value, bool) else 0
        for k in range(1, min(top, 64) + 1):
            out[f"{prefix}_{k}"] = f"{count} {value}"

    if family == "cnn":
        for name in ("conv_blocks", "convs_per_block", "kernel_size", "activation"):
            out[name] = "the cnn family"
        counted("conv_blocks", "filters")
    elif family == "resnet":
        for name in ("res_groups", "stem_width"):
            out[name] = "the resnet family"
        counted("res_groups", "width")
    elif family == "alexnet":
        out["activation"] = "the alexnet family"
    if family in ("cnn", "densenet121"):
        counted("fc_layers", "fc_units")
        if isinstance(config.get("fc_layers"), int) and config["fc_layers"] > 0:
            out.setdefault("activation", "fc_layers")
    return out


def output_size(config: Mapping[str, Any], image_size: int = IMAGE_SIZE) -> int:
    """The side of the feature map a config's network leaves of an ``image_size`` image
    before its head, computed as the builders do but without building anything: below 1,
    the builder raises :class:`InvalidConfig` (an unpadded convolution or a pooling past
    the last pixel). Reads the family's counts and kernels, which must be set."""
    family = config.get("family", "cnn")
    if family == "cnn":
        size = image_size
        kernel = int(config["kernel_size"])
        n_convs = int(config["convs_per_block"])
        valid_last = config.get("padding") == "valid_last"
        for _ in range(int(config["conv_blocks"])):
            if valid_last and n_convs > 0:
                size -= kernel - 1
            if size < 1:
                return size
            if size >= 2:
                size //= 2
        return size
    if family == "resnet":
        size = image_size - int(config.get("stem_kernel", 2)) + 1
        return size >> int(config["res_groups"]) if size > 0 else size
    if family == "alexnet":
        return 7  # resized to 224x224 inside: stride 4 and three poolings
    if family == "densenet121":
        return int(config.get("densenet_input_size", 32)) // 32  # DenseNet121's stride
    return image_size


def check_config(config: Mapping[str, Any], image_size: int = IMAGE_SIZE) -> None:
    """Raises InvalidConfig unless the builders can build ``config`` and train it: every
    value they read is one they take, none they need is missing, and the network leaves at
    least one pixel of an ``image_size`` image. Builds nothing (no Keras import).

    Raises:
        InvalidConfig: one sentence naming the parameter or the layer.
    """
    for name, value in config.items():
        check_value(name, value)
    missing = [n for n in required(config) if n not in config]
    if missing:
        raise InvalidConfig(
            f"the config has no '{missing[0]}', which {required(config)[missing[0]]} needs"
        )
    if output_size(config, image_size) < 1:
        what = "conv blocks" if config.get("family", "cnn") == "cnn" else "conv groups"
        raise InvalidConfig(
            f"its {what} shrink the {image_size}x{image_size} image below one pixel; use fewer "
            "blocks, padding 'same' or a smaller kernel"
        )
