"""Views: pure functions from :mod:`hpo32.dashboards.data` records to the typed records a
page shows (texts formatted, choices made), with no Dash and no database.

* :mod:`hpo32.dashboards.views.studies`: the studies list's rows, a study's path.
* :mod:`hpo32.dashboards.views.study`: one study's header, best trial and trial table.
* :mod:`hpo32.dashboards.views.compare`: the choices of the two comparison pages.
"""
