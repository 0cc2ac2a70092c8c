"""Keras models and optimizers from plain config values (a config of :mod:`search.space`)."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["InvalidConfig", "build_model", "build_optimizer", "compile_model"]


class InvalidConfig(ValueError):
    """A config that cannot be built (e.g. the image shrinks to nothing); the trial fails."""


def _activation(name: str):
    import keras

    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2)
    return keras.layers.Activation(name)


def build_model(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
    """Builds the conv-block network a config describes.

    Each block holds ``convs_per_block`` convolutions (conv, optional batch norm, activation);
    with ``padding: valid_last`` the last convolution of a block is unpadded, as in the report's
    MaxNet. A pooling layer and a dropout layer close each block. Then flatten, ``fc_layers``
    dense layers each followed by its activation and dropout, and a softmax output. Inputs are
    images already normalized to [0, 1] (see :func:`search.data.normalize`).

    Args:
        config: plain values for the space's parameters (see :func:`search.space.default_space`).
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
                x = layers.BatchNormalization()(x)
            x = _activation(config["activation"])(x)
        if size >= 2:
            x = pool_cls(pool_size=2)(x)
            size //= 2
        x = layers.Dropout(float(config.get(f"block_dropout_{block}", 0.0)))(x)
    x = layers.Flatten()(x)
    for k in range(1, int(config.get("fc_layers", 0)) + 1):
        x = layers.Dense(int(config[f"fc_units_{k}"]))(x)
        x = _activation(config["activation"])(x)
        x = layers.Dropout(float(config.get(f"fc_dropout_{k}", 0.0)))(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name="hpo32_cnn")


def build_optimizer(config: Mapping[str, Any]):
    """Returns the Keras optimizer named by ``config['optimizer']`` at its learning rate.

    ``sgd`` uses Nesterov momentum 0.9; ``adamw`` a weight decay of 1e-4.

    Raises:
        InvalidConfig: unknown optimizer name.
    """
    import keras

    lr = float(config["learning_rate"])
    name = config["optimizer"]
    makers = {
        "adamax": lambda: keras.optimizers.Adamax(learning_rate=lr),
        "adam": lambda: keras.optimizers.Adam(learning_rate=lr),
        "adamw": lambda: keras.optimizers.AdamW(learning_rate=lr, weight_decay=1e-4),
        "sgd": lambda: keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=lr),
    }
    if name not in makers:
        raise InvalidConfig(f"unknown optimizer '{name}'; use one of {', '.join(makers)}.")
    return makers[name]()


def compile_model(model, config: Mapping[str, Any]) -> None:
    """Compiles ``model`` with the config's optimizer and label-smoothed cross-entropy.

    Labels are one-hot (see :func:`search.training.train_config`), so the loss and metric are
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
