"""``envctl shell``: an interactive shell in the environment (pty, raw host terminal, resize).

The shell is the spec's ``shell`` (recorded in env.json's config annotation
``dev.envctl.shell``) or /bin/bash, falling back to /bin/sh with a notice when missing. The
prompt names the environment without touching rc files: PS1 (sh, zsh without a PROMPT in its
rc), PROMPT_COMMAND re-adding the marker (bash, whose rc files usually set PS1), and a wrapped
fish_prompt (fish); ENVCTL_ENV is set for prompts of your own.
"""

from __future__ import annotations

import argparse
import os


def add_parser(sub, name, parents):
    """Register ``envctl shell`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="open an interactive shell in the environment",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from envctl.commands._enter import add_run_args

    add_run_args(p)
    return p


def _shell_exists(env: dict, shell: str) -> bool:
    rootfs = env.get("rootfs") or {}
    bases = [rootfs["path"]] if rootfs.get("driver") == "copy" else [rootfs.get("upperdir"), *rootfs.get("lowerdirs", [])]
    rel = shell.lstrip("/")
    return any(b and os.path.lexists(os.path.join(b, rel)) for b in bases)


def run(args) -> int:
    """``envctl shell``: open the spec's shell (default /bin/bash, else /bin/sh) in a fresh container
    of the environment. Returns the shell's exit status (int).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.commands._enter import load_env, process_config, runtime_name
    from envctl.output import Output
    from runtime.runner import run_config

    out = Output(args.json, args.verbosity)
    project, d, env = load_env(args, out)
    shell = (env["runtime"].get("annotations") or {}).get("dev.envctl.shell") or "/bin/bash"
    if not _shell_exists(env, shell):
        if shell != "/bin/bash":
            out.info(f"envctl: {shell} not found in the environment, using /bin/sh")
        shell = "/bin/sh"
    name = project.root.name
    # bash's rc files usually set PS1 unconditionally: PROMPT_COMMAND re-adds the marker each prompt
    marker = [f"ENVCTL_ENV={name}", f"PS1=({name}) \\w \\$ ",
              f'PROMPT_COMMAND=case "$PS1" in "({name}) "*) ;; *) PS1="({name}) $PS1";; esac']
    argv = [shell]
    if os.path.basename(shell) == "fish":  # fish ignores PS1: wrap its prompt function after config
        argv += ["-C", f"functions -c fish_prompt _envctl_prompt; "
                       f"function fish_prompt; echo -n '({name}) '; _envctl_prompt; end"]
    interactive = os.isatty(0)
    cfg = process_config(env, argv, tty=interactive, cwd=args.workdir, extra_env=marker + args.env)
    return run_config(cfg, runtime=runtime_name(cfg), state_dir=d, name=d.name, warn=out.warn)
