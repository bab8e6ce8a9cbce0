"""``python -m envctl`` → :func:`envctl.cli.main`."""

import sys

from envctl.cli import main

sys.exit(main())
