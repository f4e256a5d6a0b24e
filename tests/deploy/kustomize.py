"""Just enough of Kustomize to render deploy/k8s the way `kubectl kustomize` does, without the binary.

It knows the fields the manifests use (resources, namespace, images, replicas, strategic-merge
patches by path, config map and secret generators without name hashes) and refuses every other one,
so a manifest can never rely on a feature this renderer would silently skip.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KNOWN_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "namespace",
        "images",
        "replicas",
        "patches",
        "configMapGenerator",
        "secretGenerator",
    }
)
GENERATOR_FIELDS = frozenset({"name", "behavior", "literals", "files", "options", "type"})
GENERATOR_OPTIONS = frozenset({"disableNameSuffixHash", "labels", "annotations"})
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"})
# Strategic merge: the lists Kubernetes merges item by item, and the key it matches items on.
# Any other list in a patch replaces the original, as it does in Kubernetes, except `ports`, whose
# merge key depends on the object (containerPort or port): patches may not touch it here.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
AMBIGUOUS_LISTS = frozenset({"ports"})


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not do, or does not render."""


def load_yaml_documents(path: Path) -> list[Resource]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def render(directory: Path) -> list[Resource]:
    """The resources `kubectl kustomize directory` would print, in the order they were declared."""
    kustomization = _kustomization(directory)
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        resources.extend(render(path) if path.is_dir() else load_yaml_documents(path))
    _add_generated(resources, directory, kustomization, "configMapGenerator", "ConfigMap")
    _add_generated(resources, directory, kustomization, "secretGenerator", "Secret")
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{directory}: only `patches: - path: file` is supported, got {patch}")
        for doc in load_yaml_documents(directory / patch["path"]):
            _apply_patch(resources, doc, where=f"{directory / patch['path']}")
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    for replicas in kustomization.get("replicas", []):
        _find(resources, None, replicas["name"], where=str(directory))["spec"]["replicas"] = replicas["count"]
    _check_unique(resources, directory)
    return resources


def _kustomization(directory: Path) -> dict[str, Any]:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory} has no kustomization.yaml")
    with path.open() as f:
        data: dict[str, Any] = yaml.safe_load(f)
    unknown = set(data) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{path}: fields this renderer does not implement: {sorted(unknown)}")
    if data.get("kind") != "Kustomization":
        raise KustomizeError(f"{path}: kind must be Kustomization")
    return data


def _add_generated(
    resources: list[Resource], directory: Path, kustomization: dict[str, Any], field: str, kind: str
) -> None:
    for spec in kustomization.get(field, []):
        unknown = set(spec) - GENERATOR_FIELDS
        options = spec.get("options", {})
        if unknown or set(options) - GENERATOR_OPTIONS:
            raise KustomizeError(f"{directory}: unsupported generator fields in {spec}")
        if options.get("disableNameSuffixHash") is not True:
            # With a hash suffix Kustomize renames the object and rewrites every reference to it.
            raise KustomizeError(f"{directory}: generator {spec['name']} needs options.disableNameSuffixHash: true")
        data: dict[str, str] = {}
        for literal in spec.get("literals", []):
            key, sep, value = literal.partition("=")
            if not sep:
                raise KustomizeError(f"{directory}: literal {literal!r} is not KEY=VALUE")
            data[key] = value
        for entry in spec.get("files", []):
            key, sep, file = entry.partition("=")
            file = file if sep else key
            data[Path(key).name if not sep else key] = (directory / file).read_text()
        generated: Resource = {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": spec["name"]},
        }
        for meta in ("labels", "annotations"):
            if meta in options:
                generated["metadata"][meta] = dict(options[meta])
        if kind == "Secret":
            generated["type"] = spec.get("type", "Opaque")
            generated["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        else:
            generated["data"] = data
        behavior = spec.get("behavior", "create")
        if behavior == "create":
            resources.append(generated)
        elif behavior in ("merge", "replace"):
            existing = _find(resources, kind, spec["name"], where=str(directory))
            if behavior == "replace":
                existing["data"] = generated["data"]
            else:
                existing.setdefault("data", {}).update(generated["data"])
        else:
            raise KustomizeError(f"{directory}: unknown generator behavior {behavior!r}")


def _find(resources: list[Resource], kind: str | None, name: str, *, where: str) -> Resource:
    matches = [r for r in resources if r["metadata"]["name"] == name and (kind is None or r["kind"] == kind)]
    if len(matches) != 1:
        raise KustomizeError(f"{where}: {len(matches)} resources match {kind or 'any kind'} {name!r}")
    return matches[0]


def _apply_patch(resources: list[Resource], patch: Resource, *, where: str) -> None:
    target = _find(resources, patch["kind"], patch["metadata"]["name"], where=where)
    if target["apiVersion"] != patch["apiVersion"]:
        raise KustomizeError(f"{where}: patch apiVersion {patch['apiVersion']} != {target['apiVersion']}")
    merged = strategic_merge(target, patch, path=where)
    target.clear()
    target.update(merged)


def strategic_merge(original: Any, patch: Any, *, path: str = "", field: str = "") -> Any:
    """Kubernetes' strategic merge patch, for the cases the manifests use (no `$patch` directives)."""
    if isinstance(patch, dict) and isinstance(original, dict):
        result = copy.deepcopy(original)
        for key, value in patch.items():
            if key.startswith("$"):
                raise KustomizeError(f"{path}: patch directive {key} is not supported")
            if key in original:
                result[key] = strategic_merge(original[key], value, path=f"{path}.{key}", field=key)
            else:
                result[key] = copy.deepcopy(value)
        return result
    if isinstance(patch, list) and field in AMBIGUOUS_LISTS:
        raise KustomizeError(f"{path}: patching {field} is not supported")
    if isinstance(patch, list) and isinstance(original, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        result_list = copy.deepcopy(original)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise KustomizeError(f"{path}: items of {field} need their merge key {key!r}")
            index = next((i for i, old in enumerate(result_list) if old.get(key) == item[key]), None)
            if index is None:
                result_list.append(copy.deepcopy(item))
            else:
                result_list[index] = strategic_merge(result_list[index], item, path=f"{path}[{item[key]}]")
        return result_list
    return copy.deepcopy(patch)


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"unsupported image fields {sorted(unknown)}")
    for container in pod_containers_all(resources):
        name, tag = split_image(container["image"])
        if name != image["name"]:
            continue
        new = image.get("newName", name)
        if "digest" in image:
            container["image"] = f"{new}@{image['digest']}"
        else:
            new_tag = image.get("newTag", tag)
            container["image"] = f"{new}:{new_tag}" if new_tag else new


def split_image(reference: str) -> tuple[str, str | None]:
    """`registry:5000/name:tag` -> (`registry:5000/name`, `tag`); the tag is None when absent."""
    name, _, tail = reference.rpartition("/")
    repo, sep, tag = tail.partition(":")
    full = f"{name}/{repo}" if name else repo
    return full, (tag if sep else None)


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    """The pod spec of a workload (Deployment, StatefulSet, Job, DaemonSet, CronJob), else None."""
    spec = resource.get("spec", {})
    if resource["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return template.get("spec") if isinstance(template, dict) else None


def pod_containers_all(resources: list[Resource]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in resources:
        spec = pod_spec(resource)
        if spec is not None:
            found.extend(spec.get("initContainers", []))
            found.extend(spec.get("containers", []))
    return found


def _check_unique(resources: list[Resource], directory: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for r in resources:
        ident = (r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"])
        if ident in seen:
            raise KustomizeError(f"{directory}: {ident} is declared twice")
        seen.add(ident)
