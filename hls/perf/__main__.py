"""``python -m vitcod.hls.perf``: the command line of :mod:`vitcod.hls.perf.cli`."""

import sys

from .cli import main

sys.exit(main())
