"""``python -m lvg.cli``: the ``lvg`` command."""

import sys

from lvg.cli import main

sys.exit(main())
