"""Keras models and optimizers from plain config values (a config of :mod:`hpo32.search.space`)."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = [
    "DENSENET_WEIGHTS_FILE",
    "FAMILIES",
    "InvalidConfig",
    "WeightsMissing",
    "build_model",
    "build_optimizer",
    "compile_model",
    "init_whitening",
    "resolve_weights",
]

#: The model families ``family`` may name, each with its builder below.
FAMILIES = ("cnn", "resnet", "alexnet", "densenet121")

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
):
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


def _head(x, config: Mapping[str, Any], num_classes: int):
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

    def conv(x, width: int):
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


def _dirac(layer) -> None:
    """Sets a built convolution's first ``min(in, out)`` filters to pass their input channel
    through unchanged (the rest keep their random start), as airbench's dirac init."""
    import numpy as np

    kernel = np.array(layer.kernel.numpy())
    kh, kw, c_in, c_out = kernel.shape
    n = min(c_in, c_out)
    kernel[:, :, :, :n] = 0.0
    kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
    layer.kernel.assign(kernel)


def init_whitening(model, images, eps: float = 5e-4, limit: int = 5000) -> bool:
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


def build_optimizer(config: Mapping[str, Any]):
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


def compile_model(model, config: Mapping[str, Any]) -> None:
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
