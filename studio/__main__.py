"""`python -m studio` is the `studio` command (studio.launcher)."""

import sys

from studio.launcher import main

sys.exit(main())
