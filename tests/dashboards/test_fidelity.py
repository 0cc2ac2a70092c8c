"""The studies list shows each study's fidelity, so a 10-class and a 200-class ImageNet32
study are not both just "imagenet32"."""

from __future__ import annotations

import optuna

from hpo32.dashboards import data
from hpo32.dashboards.views.studies import HEADINGS, study_row
from hpo32.storage import Records, make_engine


def test_the_studies_list_shows_each_study_fidelity(tmp_path):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    records = Records(make_engine(url))
    for name, classes in (("ten", 10), ("many", 200)):
        study = optuna.create_study(study_name=name, storage=url, direction="maximize")
        study.set_user_attr(
            "fidelity",
            {"classes": classes, "train_images": 90 * classes, "image_size": 32, "epochs": 4},
        )
        records.add_study(name, "optuna", "imagenet32", {"epochs": 4}, 60.0)
    optuna.create_study(study_name="older", storage=url)  # made before fidelity was recorded
    records.add_study("older", "optuna", "imagenet32", {"epochs": 2}, 60.0, ["a", "b", "c"])
    optuna.create_study(study_name="plain", storage=url)  # Optuna's own: nothing known
    rows = {r["name"]: study_row(r) for r in data.list_studies(make_engine(url, read_only=True))}
    assert rows["ten"].fidelity == "10 classes, 900 images, 4 epochs, 32 px"
    assert rows["many"].fidelity == "200 classes, 18,000 images, 4 epochs, 32 px"
    assert rows["older"].fidelity == "3 classes, 2 epochs"  # its classes and its spec
    assert rows["plain"].fidelity == "-"
    assert HEADINGS.index("Fidelity") == HEADINGS.index("Engine") + 1
