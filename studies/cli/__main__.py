"""``python -m hpo32.studies.cli``: the ``hpo32`` command."""

import sys

from hpo32.studies.cli import main

sys.exit(main())
