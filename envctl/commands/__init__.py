"""One module per CLI command. Each defines ``add_parser(subparsers)`` and ``run(args) -> int``.

Command modules are imported when the argument parser is built, so their top level must stay
light: import httpx, jinja2, yaml, watchdog, zstandard inside ``run`` only.
"""
