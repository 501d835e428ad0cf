"""``python -m driftline.cli``: the ``driftline`` command."""

import sys

from driftline.cli.main import main

sys.exit(main())
