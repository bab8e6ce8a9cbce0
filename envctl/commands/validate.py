"""``envctl validate [--json]``: check envctl.yaml and print it normalised.

Every problem is reported (``file:line:col: key.path: message``) and the exit status is 2.
On success the normalised spec — defaults resolved, image reference normalised, sizes in
bytes — is printed as YAML (``--json``: JSON); either output is itself a valid envctl.yaml.
"""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl validate`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    return sub.add_parser(name, parents=parents, help="check envctl.yaml and print it normalised",
                          description="Check the spec; print it normalised (defaults resolved).")


def run(args) -> int:
    """``envctl validate``: check envctl.yaml and print it normalised (YAML, or JSON with ``--json``).
    Returns the exit code (int, 0). Raises SpecError/SpecErrors for an invalid spec.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    import yaml

    from envctl.output import Output
    from envctl.project import find_project
    from specs.load import load_spec

    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    spec = load_spec(project.spec_path, display=project.display_spec)
    data = spec.to_dict()
    text = (f"# {project.display_spec}: valid; spec digest {spec.digest()}\n"
            + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))
    out.result(data, text)
    return 0
