"""Datasets of 32x32 RGB images: readers, train/validation/test splits and the tf.data pipeline.

Three sources are supported, all giving the same :class:`Dataset` of uint8 HWC images:

* ``cifar10``: the official python pickles, as the extracted ``cifar-10-batches-py/`` folder or
  straight out of ``cifar-10-python.tar.gz``; downloaded into the Keras cache when missing.
* ``imagenet32``: the official downsampled-ImageNet npz files (``train_data_batch_K.npz`` and
  ``val_data.npz``), optionally restricted to a class subset while reading, batch by batch.
  It is never downloaded (it needs an image-net.org login).
* ``folder:PATH``: one folder of images per class (Tiny-ImageNet's layout included), resized to
  32x32.

:func:`make_splits` carves a stratified validation split out of the training images and can cut
train and validation down to a budget; :func:`make_tf_dataset` turns arrays into a batched,
shuffled, optionally augmented ``tf.data.Dataset`` (the TensorFlow backend's input) and
:func:`make_array_batches` into the same batches as a ``keras.utils.PyDataset`` (every other
backend's); :func:`predict_input` picks one for ``model.predict``. Every user-fixable problem raises
:class:`DataError` whose message is one sentence naming the file or folder and the fix.

The package's modules: :mod:`.checks` (DataError, Dataset, Splits, data locations, the shared
validation), one reader per source (:mod:`.cifar10`, :mod:`.imagenet32`, :mod:`.folder`),
:mod:`.stratify` (stratified sampling), :mod:`.splits` (load_dataset, make_splits, load_splits)
and :mod:`.pipeline` (normalize, make_tf_dataset, make_array_batches, predict_input). Import
the names from here.

This package imports no ML framework at import time; TensorFlow is imported inside the functions
that need it.
"""

# The names in __all__, and (as redundant aliases) the other public names the single module
# had. The download reads CIFAR10_SHA256 from here, so setting it on this package takes effect.
from hpo32.search.data.checks import ClassSpec as ClassSpec
from hpo32.search.data.checks import (
    DataError,
    Dataset,
    Splits,
    data_dir_named,
    resolve_data_dir,
    select_classes,
)
from hpo32.search.data.cifar10 import CIFAR10_ARCHIVE as CIFAR10_ARCHIVE
from hpo32.search.data.cifar10 import CIFAR10_CLASS_NAMES, CIFAR10_URL, load_cifar10
from hpo32.search.data.cifar10 import CIFAR10_FOLDER as CIFAR10_FOLDER
from hpo32.search.data.cifar10 import CIFAR10_PAGE as CIFAR10_PAGE
from hpo32.search.data.cifar10 import CIFAR10_SHA256 as CIFAR10_SHA256
from hpo32.search.data.folder import IMAGE_EXTENSIONS, load_folder
from hpo32.search.data.imagenet32 import IMAGENET32_MAX_LABEL as IMAGENET32_MAX_LABEL
from hpo32.search.data.imagenet32 import IMAGENET_URL, load_imagenet32
from hpo32.search.data.pipeline import PREFETCH_BATCHES as PREFETCH_BATCHES
from hpo32.search.data.pipeline import make_array_batches, make_tf_dataset, normalize, predict_input
from hpo32.search.data.splits import DATASET_CHOICES as DATASET_CHOICES
from hpo32.search.data.splits import load_dataset, load_splits, make_splits, split_indices
from hpo32.search.data.stratify import stratified_subset

__all__ = [
    "CIFAR10_CLASS_NAMES",
    "CIFAR10_URL",
    "IMAGENET_URL",
    "IMAGE_EXTENSIONS",
    "DataError",
    "Dataset",
    "Splits",
    "load_cifar10",
    "load_dataset",
    "load_folder",
    "load_imagenet32",
    "load_splits",
    "make_splits",
    "make_array_batches",
    "make_tf_dataset",
    "normalize",
    "predict_input",
    "data_dir_named",
    "resolve_data_dir",
    "select_classes",
    "split_indices",
    "stratified_subset",
]
