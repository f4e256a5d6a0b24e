"""Loads the deployment files once: deploy/compose.yaml and the rendered Kustomize directories."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.kustomize import Resource, pod_spec, render

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
# Every kustomization a user applies; the Cartera ones share the base.
CARTERA_KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/production")
ALL_KUSTOMIZATIONS = (*CARTERA_KUSTOMIZATIONS, "strimzi")
# The services that consume topics: replicas beyond the partition count get no partitions.
CONSUMERS = ("segmenter", "scoring", "campaigns")
# The Secret every overlay expects; production creates it outside the manifests.
SECRET_NAME = "cartera-secrets"


@functools.cache
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def compose_env(service: str) -> dict[str, str]:
    """A compose service's environment after YAML merges, as NAME -> value."""
    env = compose()["services"][service].get("environment", {})
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


@functools.cache
def _rendered(kustomization: str) -> tuple[Resource, ...]:
    return tuple(render(K8S / kustomization))


def rendered(kustomization: str) -> list[Resource]:
    return list(_rendered(kustomization))


def one(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name!r}, found {len(matches)}"
    return matches[0]


def config_data(resources: list[Resource]) -> dict[str, str]:
    return dict(one(resources, "ConfigMap", "cartera-config")["data"])


def container(resource: Resource, name: str | None = None) -> dict[str, Any]:
    spec = pod_spec(resource)
    assert spec is not None, f"{resource['kind']} {resource['metadata']['name']} has no pod template"
    containers: list[dict[str, Any]] = spec["containers"]
    name = name or resource["metadata"]["name"]
    matches = [c for c in containers if c["name"] == name] or containers[:1]
    return matches[0]


def container_env_names(resources: list[Resource], c: dict[str, Any]) -> set[str]:
    """Names the container gets: its `env`, plus every key of the ConfigMaps and Secrets in `envFrom`
    that are part of the rendered resources (an external Secret's keys cannot be known)."""
    names = {e["name"] for e in c.get("env", [])}
    for source in c.get("envFrom", []):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in source:
                ref = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == source[field]["name"]]
                names |= {source.get("prefix", "") + k for r in ref for k in r.get("data", {})}
    return names
