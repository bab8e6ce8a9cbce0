"""``envctl login REGISTRY`` / ``envctl logout REGISTRY``: docker-compatible credential storage.

Login checks the credentials against the registry (``GET /v2/`` through the bearer/basic flow)
before saving them like ``docker login`` does: to a configured credential helper, else to
``auths`` in ``$REGISTRY_AUTH_FILE`` or ``~/.docker/config.json`` (mode 0600).
"""

from __future__ import annotations

import sys


def add_parser(sub, name, parents):
    """Register ``envctl login`` or ``envctl logout`` (``name``) on ``sub`` (argparse subparsers action)
    with the common ``parents``; returns the new subparser (argparse.ArgumentParser).
    """
    if name == "logout":
        p = sub.add_parser(name, parents=parents, help="forget saved credentials for a registry")
        p.add_argument("registry", metavar="REGISTRY", help="registry host[:port], e.g. ghcr.io")
        return p
    p = sub.add_parser(name, parents=parents, help="save credentials for a registry (docker-compatible)")
    p.add_argument("registry", metavar="REGISTRY", help="registry host[:port], e.g. ghcr.io")
    p.add_argument("-u", "--username", help="user name (prompted when missing)")
    p.add_argument("-p", "--password", help="password (prefer --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    return p


def _registry_name(text: str) -> str:
    from engine.sources.registry_config import canonical_host
    from specs.errors import UsageError

    host = text.split("://", 1)[-1].split("/", 1)[0]
    if not host or any(c.isspace() for c in host):
        raise UsageError(f"invalid registry {text!r}: expected host[:port]")
    return canonical_host(host)


def _verify(registry: str, creds) -> None:
    """GET /v2/ with the credentials; raises RegistryError when the registry rejects them."""
    import httpx

    from engine.sources.auth import RegistryAuth
    from engine.errors import RegistryError
    from engine.sources.registry_config import RegistryConfig, api_host

    cfg = RegistryConfig.from_env()
    host = api_host(registry)
    auth = RegistryAuth(registry, creds)
    schemes = ["https", "http"] if cfg.is_insecure(host) else ["https"]
    for i, scheme in enumerate(schemes):
        try:
            with httpx.Client(verify=scheme == "https" and not cfg.is_insecure(host), timeout=30) as c:
                r = c.get(f"{scheme}://{host}/v2/", auth=auth)
        except httpx.ConnectError as e:
            if i + 1 < len(schemes):
                continue
            raise RegistryError(f"cannot reach registry {registry}: {e}") from None
        if r.status_code == 401:
            raise RegistryError(f"login to {registry} failed: the registry rejected user {creds.username!r}",
                                hint="check the user name and password", status=401)
        if r.status_code >= 400:
            raise RegistryError(f"login to {registry} failed: HTTP {r.status_code}", status=r.status_code)
        return


def run(args) -> int:
    """``envctl login REGISTRY`` / ``envctl logout REGISTRY``: save or erase registry credentials
    (docker-compatible auth file or credential helper). Returns the exit code (int, 0). Raises
    UsageError for an invalid registry name or missing/conflicting credential options,
    RegistryError when the registry is unreachable or rejects the credentials.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.output import Output
    from specs.errors import UsageError

    out = Output(args.json, args.verbosity)
    registry = _registry_name(args.registry)
    if args.command == "logout":
        from engine.sources.auth import erase_credentials

        removed = erase_credentials(registry)
        out.result({"registry": registry, "removed": removed},
                   f"removed credentials for {registry}" if removed else f"not logged in to {registry}")
        return 0
    from engine.sources.auth import Credentials, store_credentials

    username = args.username
    if args.password_stdin:
        if args.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = args.password
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("login needs --username when stdin is not a terminal")
        username = input("Username: ").strip()
    if password is None:
        import getpass

        password = getpass.getpass("Password: ")
    if not username or not password:
        raise UsageError("login needs a user name and a password")
    creds = Credentials(username, password)
    _verify(registry, creds)
    where = store_credentials(registry, creds)
    out.result({"registry": registry, "username": username, "stored": where},
               f"login succeeded: credentials for {registry} saved to {where}")
    return 0
