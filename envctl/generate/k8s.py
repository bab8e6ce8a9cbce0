"""``envctl generate k8s [--kind pod|deployment]``: the environment as a Kubernetes workload.

Every container runs the pushed environment image by digest (``--image``; the locked base digest
is enough when the spec has no ``run``/``copy`` step). Each service becomes a container (its
command, env, workdir, readiness check as a probe, readiness port as a containerPort); with no
service one ``env`` container idles so ``kubectl exec`` can enter it. The spec's ``resources``
become equal requests and limits on every container (envctl gives the services one shared cgroup;
Kubernetes has no pod-wide limit in the stable API), capabilities and a numeric ``user`` become
the securityContext. The body is ``yaml.safe_dump`` of dicts in a fixed order.
"""

from __future__ import annotations

import copy
import re
from urllib.parse import urlsplit

from envctl.generate import GenerateError, Generated, header_lines
from envctl.generate.common import (cap_name, comment, environment_vars, pinned_base, pushed_image,
                                    render_template, shell_argv)

__all__ = ["render", "PATH"]

PATH = "k8s/envctl-k8s.yaml"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_RESTART = {"always": "Always", "on-failure": "OnFailure", "never": "Never"}


def _dns_label(name: str, what: str) -> str:
    label = name.lower().replace("_", "-")
    if not _NAME.match(label):
        raise GenerateError(f"generate k8s: {what} {name!r} is not a DNS-1123 label",
                            hint="use lowercase letters, digits and '-' (at most 63)")
    return label


def _image(inputs, options) -> str:
    pushed = pushed_image(options, "k8s")
    if pushed:
        return pushed
    if any(s.kind in ("run", "copy") for s in inputs.spec.steps):
        raise GenerateError("generate k8s: the environment has build steps, so it needs the pushed image",
                            hint="run 'envctl push REGISTRY/REPO:TAG' and pass --image REGISTRY/REPO@sha256:...")
    return pinned_base(inputs, "k8s")


def _resources(spec) -> dict:
    r, amounts = spec.resources, {}
    if r.cpus is not None:
        amounts["cpu"] = f"{max(1, round(r.cpus * 1000))}m"
    if r.memory is not None:
        amounts["memory"] = str(r.memory)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _security(spec) -> tuple[dict, list[str]]:
    sc: dict = {}
    notes = []
    caps = {}
    if spec.cap_add:
        caps["add"] = [cap_name(c) for c in spec.cap_add]
    if spec.cap_drop:
        caps["drop"] = [cap_name(c) for c in spec.cap_drop]
    if caps:
        sc["capabilities"] = caps
    if spec.user:
        uid, _, gid = spec.user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            sc["runAsUser"] = int(uid)
            if gid:
                sc["runAsGroup"] = int(gid)
        else:
            notes.append(f"user {spec.user} (Kubernetes needs a numeric uid: set user: UID[:GID])")
    return sc, notes


def _probe(ready) -> dict | None:
    period = max(1, round(ready.interval_ms / 1000))
    timing = {"periodSeconds": period,
              "failureThreshold": max(1, -(-ready.timeout_ms // (period * 1000)))}
    if ready.kind == "command" or ready.command is not None:
        return {"exec": {"command": shell_argv(ready.command, None)}, **timing}
    if ready.http is not None:
        url = urlsplit(ready.http)
        port = url.port or ready.port or 80
        path = (url.path or "/") + (f"?{url.query}" if url.query else "") if url.scheme else ready.http
        return {"httpGet": {"path": path, "port": port}, **timing}
    if ready.port is not None:
        return {"tcpSocket": {"port": ready.port}, **timing}
    return None


def _escape(value: str) -> str:
    # the kubelet expands $(VAR) in env values, command and args; $$ is its escape
    return value.replace("$(", "$$(")


def _env_list(env: dict) -> list[dict]:
    return [{"name": k, "value": _escape(v)} for k, v in env.items()]


def _container(name, image, argv, env, workdir, resources, security, ready=None) -> dict:
    c: dict = {"name": name, "image": image, "command": [_escape(a) for a in argv]}
    if env:
        c["env"] = _env_list(env)
    c["workingDir"] = workdir
    if ready is not None and ready.port is not None:
        c["ports"] = [{"containerPort": ready.port, "protocol": "TCP"}]
    if ready is not None and (probe := _probe(ready)):
        c["readinessProbe"] = probe
    # copies: a dict shared between containers would be dumped as a YAML anchor/alias
    if resources:
        c["resources"] = copy.deepcopy(resources)
    if security:
        c["securityContext"] = copy.deepcopy(security)
    return c


def _containers(inputs, image) -> tuple[list[dict], list[str]]:
    spec = inputs.spec
    env, res = environment_vars(spec), _resources(spec)
    security, notes = _security(spec)
    if not spec.services:
        return [_container("env", image, ["sleep", "infinity"], env, spec.workdir, res, security)], notes
    out = []
    for svc in spec.services:
        out.append(_container(_dns_label(svc.name, "service"), image, shell_argv(svc.command, spec.shell),
                              {**env, **svc.env_dict()}, svc.workdir or spec.workdir, res, security, svc.ready))
    return out, notes


def _notes(spec) -> list[str]:
    notes = []
    if spec.mounts:
        notes.append("mounts (host bind mounts: add volumes for them)")
    notes.append(f"the project mount at {spec.workdir} (bake files in with copy steps, or add a volume)")
    if spec.resources.pids is not None:
        notes.append("resources.pids (set by the kubelet's podPidsLimit)")
    if spec.network == "none":
        notes.append("network: none (use a NetworkPolicy)")
    if any(s.depends_on for s in spec.services):
        notes.append("depends_on (containers start together; readiness probes gate traffic only)")
    if any(s.watch for s in spec.services):
        notes.append("watch (no hot reload in a cluster)")
    return notes


def _restart(spec, kind: str) -> str:
    if kind == "deployment" or not spec.services:
        return "Always"
    policies = {s.restart for s in spec.services}
    return next(_RESTART[p] for p in ("always", "on-failure", "never") if p in policies)


def _document(inputs, options) -> tuple[dict, list[str]]:
    spec, kind = inputs.spec, options.kind
    if kind not in ("pod", "deployment"):
        raise GenerateError(f"generate k8s: unknown --kind {kind!r}", hint="use --kind pod or deployment")
    name = _dns_label(options.name, "--name")
    containers, notes = _containers(inputs, _image(inputs, options))
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "envctl"}
    meta = {"name": name, "labels": labels, "annotations": {"dev.envctl/spec-digest": spec.digest()}}
    pod = {"restartPolicy": _restart(spec, kind), "containers": containers}
    if kind == "pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod}, notes + _notes(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}, notes + _notes(spec)


def render(inputs, options) -> Generated:
    """The manifest bytes (YAML). Raises GenerateError (no pushed image for a built environment,
    a service name that is not a DNS label, an unknown kind)."""
    import yaml

    doc, notes = _document(inputs, options)
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
    text = render_template("k8s.yaml.j2", header=comment(header_lines(inputs, "k8s", options, notes)), body=body)
    return Generated("k8s", PATH, text.encode(), tuple(notes))
