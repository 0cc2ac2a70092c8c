"""The ``hpo32`` command: parses, resolves settings once, delegates.

User errors end in one sentence on stderr and exit code 2; no traceback. Heavy frameworks
load only in the commands that train.

The package's modules: :mod:`.parser` (the argument parser, ``--storage`` shared through a
parent parser, each subcommand naming its handler), :mod:`.entry` (:func:`main`: parse,
dispatch, user errors to exit codes), :mod:`.search` (search, resume, worker),
:mod:`.inspect` (list, show, export, compare, predict, presets) and :mod:`.common` (exit
codes, UserError, the database and table helpers they share). ``python -m hpo32.studies.cli``
runs :func:`main`.
"""

from hpo32.studies.cli.entry import main

__all__ = ["main"]
