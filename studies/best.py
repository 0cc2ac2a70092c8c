"""The study's best model: load it, summarize it, plot its curves, predict with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    from hpo32.storage import Records

__all__ = [
    "BestModel",
    "ImageError",
    "ModelError",
    "load_best",
    "plot_curves",
    "predict_images",
    "study_backend",
]


class ImageError(ValueError):
    """An image that cannot be read; the message names the file."""


class ModelError(LookupError):
    """The best model's file is there but damaged or unreadable; the message names it."""


@dataclass
class BestModel:
    """The best trial's saved model and what it needs to name its classes."""

    study: str
    trial_number: int
    model_path: Path
    class_ids: list[str]
    class_names: list[str]
    history: dict[str, list[float]]
    tta: str = "none"  # the test-time augmentation the trial validated with
    backend: str = "tensorflow"  # the Keras backend the trial trained on

    def load(self) -> keras.Model:
        """The Keras model.

        Raises:
            ModelError: the file is damaged or this Keras cannot read it.
        """
        check_model_file(self.model_path, self.study)
        import warnings

        _prefer_backend(self.backend)
        import keras

        try:
            with warnings.catch_warnings():  # saved without optimizer state, on purpose
                warnings.filterwarnings("ignore", message="Skipping variable loading for optim")
                return keras.models.load_model(self.model_path)
        except Exception as exc:  # Keras reports a damaged archive as "File not found"
            raise ModelError(
                f"the best model of study '{self.study}' at '{self.model_path}' cannot be "
                f"loaded ({type(exc).__name__}); it is damaged or was saved by another "
                "Keras, so restore the file from a copy."
            ) from None


def check_model_file(path: Path, study: str) -> None:
    """Checks that ``path`` is a complete ``.keras`` archive (a zip whose members all read
    back), without loading Keras.

    Raises:
        ModelError: the file is truncated or not a ``.keras`` archive.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        bad = path.name
    if bad is not None:
        raise ModelError(
            f"the best model of study '{study}' at '{path}' is damaged (not a complete "
            ".keras archive); restore the file from a copy."
        )


def load_best(records: Records, study_name: str, artifact_root: Path) -> BestModel:
    """Finds the best trial's model and the study's class names.

    Raises:
        LookupError: the study has no saved best model yet (one clear sentence).
        ModelError: the model file is damaged (a LookupError too).
    """
    from hpo32.search.recipe import tta_of
    from hpo32.storage import queries

    best = records.best_trial(study_name)
    if best is None or not best["user_attrs"].get("model_path"):
        raise LookupError(f"study '{study_name}' has no saved model yet; run a search first.")
    path = artifact_root / best["user_attrs"]["model_path"]
    if not path.is_file():
        raise LookupError(
            f"the best model of '{study_name}' is missing at '{path}'; set "
            "HPO32_ARTIFACTS to the folder that holds it."
        )
    check_model_file(path, study_name)
    ids, names = queries.study_classes(records.engine, study_name)
    history = _trial_history(records, study_name, best["number"])
    tta = tta_of(best["config"])
    backend = study_backend(records, study_name)
    return BestModel(study_name, best["number"], path, ids, names, history, tta, backend)


def study_backend(records: Records, name: str) -> str:
    """The Keras backend study ``name`` trains on: its spec's, else its recorded attribute,
    else ``tensorflow`` (a study made before backends were recorded)."""
    from hpo32.storage import queries
    from hpo32.storage.records import recorded_backend

    row = records.study(name) or {}
    attrs = queries.study_attrs(records.engine, name)
    return recorded_backend(row.get("spec") or {}, attrs) or "tensorflow"


def _prefer_backend(backend: str) -> None:
    """Before Keras loads a model: the backend it trained on, when ``$KERAS_BACKEND`` names
    none and that backend's library is here (a PyTorch study's model then opens on a machine
    without TensorFlow); otherwise Keras' own choice, which reads the same file."""
    import os
    import sys

    from hpo32.search.hardware import BackendError, use_backend

    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return
    try:
        use_backend(backend)
    except (BackendError, ValueError):
        pass


def _trial_history(records: Records, study_name: str, number: int) -> dict[str, list[float]]:
    """The ``history`` user attribute of trial ``number`` (per-epoch metrics), or ``{}``."""
    from hpo32.storage import queries

    return queries.trial_user_attr(records.engine, study_name, number, "history", default={})


def read_image(path: str | Path):
    """An image file (PNG, JPEG, any size up to Pillow's decompression-bomb limit, about 89
    megapixels) as a uint8 32x32x3 array, resized as in training.

    Raises:
        ImageError: missing, unreadable, or larger than the limit (checked from its header).
    """
    import warnings

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image '{path}' does not exist; give the path of a PNG or JPEG file.")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = img.convert("RGB")
                if img.size != (32, 32):
                    img = img.resize((32, 32), Image.Resampling.BILINEAR)
                return np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        size = f"more than {limit / 1e6:.0f} megapixels" if limit else "too many pixels"
        raise ImageError(
            f"image '{path}' has {size}, more than hpo32 reads; shrink it first (the model "
            "sees 32x32 pixels)."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImageError(f"cannot read image '{path}'; give a PNG or JPEG file.") from None


def predict_images(best: BestModel, paths: list[str], top: int = 10) -> list[dict[str, Any]]:
    """Top-k predictions per image, averaged over the best trial's test-time augmentation
    views as its validation and test were.

    Returns:
        One ``{"image", "predictions": [{"class_id", "class_name", "probability"}]}`` per image,
        the predictions sorted by probability, over all classes summing to 1.
    """
    import numpy as np

    from hpo32.search.recipe import predict_views

    images = np.stack([read_image(p) for p in paths])  # every file is checked before loading
    model = best.load()
    probs = predict_views(model, images, best.tta)  # the views validation and the test used
    out = []
    for path, p in zip(paths, probs, strict=True):
        order = np.argsort(-p)[:top]
        out.append(
            {
                "image": str(path),
                "total_probability": float(p.sum()),
                "predictions": [
                    {
                        "class_id": best.class_ids[i] if i < len(best.class_ids) else str(i),
                        "class_name": best.class_names[i] if i < len(best.class_names) else str(i),
                        "probability": float(p[i]),
                    }
                    for i in order
                ],
            }
        )
    return out


def plot_curves(best: BestModel, out_dir: Path) -> tuple[Path, Path]:
    """Writes the best trial's accuracy and loss per epoch as ``curves.png`` and ``curves.html``
    into ``out_dir`` (created; ``hpo32 show --out``: never the artifact folder).

    Returns:
        The PNG and HTML paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    out_dir.mkdir(parents=True, exist_ok=True)
    h = best.history
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plotly_fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"))
    for col, metric in enumerate(("accuracy", "loss")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = h.get(key) or []
            epochs = list(range(1, len(values) + 1))
            axes[col].plot(epochs, values, style, label=key)
            plotly_fig.add_trace(
                go.Scatter(x=epochs, y=values, name=key, mode="lines+markers"), row=1, col=col + 1
            )
        axes[col].set_xlabel("epoch")
        axes[col].set_title(metric)
        axes[col].legend()
    fig.suptitle(f"{best.study}: best trial {best.trial_number}")
    fig.tight_layout()
    png, html = out_dir / "curves.png", out_dir / "curves.html"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    plotly_fig.update_layout(title=f"{best.study}: best trial {best.trial_number}")
    plotly_fig.write_html(html, include_plotlyjs=True)
    return png, html
