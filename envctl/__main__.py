"""``python -m envctl`` → :func:`envctl._fast.entry` (the warm ``run`` fast path, else :func:`envctl.cli.main`)."""

from envctl._fast import entry

entry()
