"""deploy/k8s: every rendered manifest is valid Kubernetes, and the pieces fit together."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_validate import utils as k8s_schemas  # type: ignore[import-untyped]

from tests.deploy.kustomize import Resource, load_yaml_documents, pod_spec
from tests.deploy.manifests import (
    ALL_KUSTOMIZATIONS,
    CARTERA_KUSTOMIZATIONS,
    CONSUMERS,
    K8S,
    SECRET_NAME,
    config_data,
    container,
    one,
    rendered,
)
from tests.deploy.settings_env import SERVICE_NAMES

# The oldest Kubernetes release the manifests promise to work on, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.30", k8s_schemas.latest_version())
# Custom resources have no schema in kubernetes-validate; they are checked by the tests that use them.
CUSTOM_KINDS = {"KafkaTopic"}


def pod_resources(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if pod_spec(r) is not None]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", ALL_KUSTOMIZATIONS)
def test_every_manifest_matches_the_kubernetes_schema(kustomization: str, version: str) -> None:
    problems = []
    for resource in rendered(kustomization):
        if resource["kind"] in CUSTOM_KINDS:
            continue
        try:
            k8s_schemas.validate(resource, version, strict=True)
        except k8s_schemas.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.append(f"{resource['kind']}/{resource['metadata']['name']}: {path}: {e.message}")
        except k8s_schemas.SchemaNotFoundError as e:
            problems.append(e.message)
    assert not problems, "\n".join(problems)


def test_every_manifest_file_is_part_of_a_kustomization() -> None:
    """So that 'every manifest is validated' holds: a YAML file no kustomization uses is never rendered."""
    used = set()
    for directory in (K8S / k for k in ALL_KUSTOMIZATIONS):
        kustomization = load_yaml_documents(directory / "kustomization.yaml")[0]
        used.add(directory / "kustomization.yaml")
        used |= {(directory / r).resolve() for r in kustomization.get("resources", [])}
        used |= {(directory / p["path"]).resolve() for p in kustomization.get("patches", [])}
    unused = [p for p in K8S.rglob("*.yaml") if p.resolve() not in {u.resolve() for u in used}]
    assert not unused, f"not in any kustomization: {unused}"


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_each_service_has_a_deployment_service_budget_and_autoscaler(kustomization: str) -> None:
    resources = rendered(kustomization)
    for name in SERVICE_NAMES:
        deployment = one(resources, "Deployment", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels_match(deployment["spec"]["selector"]["matchLabels"], pod_labels), name
        assert container(deployment)["command"] == ["python", "-m", name]
        assert labels_match(one(resources, "Service", name)["spec"]["selector"], pod_labels), name
        assert labels_match(one(resources, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"], pod_labels)
        hpa = one(resources, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployment["spec"], f"{name}: the autoscaler owns the replica count"


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_consumers_never_scale_past_the_partition_count(kustomization: str) -> None:
    resources = rendered(kustomization)
    partitions = int(config_data(resources)["CARTERA_PARTITIONS"])
    for name in CONSUMERS:
        assert one(resources, "HorizontalPodAutoscaler", name)["spec"]["maxReplicas"] <= partitions, name


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_probes_reach_the_port_each_service_listens_on(kustomization: str) -> None:
    resources = rendered(kustomization)
    config = config_data(resources)
    for name in SERVICE_NAMES:
        c = container(one(resources, "Deployment", name))
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["http"] == int(config[f"{name.upper()}_PORT"]), f"{name}: containerPort != {name.upper()}_PORT"
        # ingest is ready while its database answers: intake keeps accepting when the broker is away.
        ready = "/healthz" if name == "ingest" else "/readyz"
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", ready)):
            assert c[probe]["httpGet"] == {"path": path, "port": "http"}, f"{name}: {probe}"
        service = one(resources, "Service", name)
        assert service["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_every_container_has_requests_and_limits(kustomization: str) -> None:
    for resource in pod_resources(rendered(kustomization)):
        for c in pod_spec(resource)["containers"]:  # type: ignore[index]
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(part, {})), (
                    f"{resource['kind']}/{resource['metadata']['name']}: {c['name']} has no {part}"
                )


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_pods_run_unprivileged_without_service_links(kustomization: str) -> None:
    for resource in pod_resources(rendered(kustomization)):
        spec: dict[str, Any] = pod_spec(resource)  # type: ignore[assignment]
        where = f"{resource['kind']}/{resource['metadata']['name']}"
        # Service links put FOO_PORT=tcp://... into every pod, which collides with the port settings.
        assert spec.get("enableServiceLinks") is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert isinstance(spec["securityContext"]["runAsUser"], int), where
        for c in spec["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_config_and_secret_references_resolve(kustomization: str) -> None:
    resources = rendered(kustomization)
    names = {(r["kind"], r["metadata"]["name"]) for r in resources}
    secrets = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Secret"}
    for resource in pod_resources(resources):
        spec: dict[str, Any] = pod_spec(resource)  # type: ignore[assignment]
        where = f"{resource['kind']}/{resource['metadata']['name']}"
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, where
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names, where
            for env in c.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    key_ref = ref["configMapKeyRef"]
                    data = one(resources, "ConfigMap", key_ref["name"])["data"]
                    assert key_ref.get("optional") or key_ref["key"] in data, f"{where}: {key_ref}"
                if "secretKeyRef" in ref:
                    key_ref = ref["secretKeyRef"]
                    assert key_ref["name"] == SECRET_NAME, f"{where}: secrets live in {SECRET_NAME}"
                    secret = secrets.get(SECRET_NAME)
                    if secret is not None:  # rendered here (dev); elsewhere it is created beside the manifests
                        assert key_ref.get("optional") or key_ref["key"] in secret["data"], f"{where}: {key_ref}"


def test_the_development_overlay_is_self_contained() -> None:
    resources = rendered("overlays/dev")
    assert one(resources, "Secret", SECRET_NAME)
    config = config_data(resources)
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert one(resources, "Service", "kafka") and one(resources, "StatefulSet", "kafka")
    assert one(resources, "Service", "postgres") and one(resources, "StatefulSet", "postgres")
    assert int(config["CARTERA_REPLICATION_FACTOR"]) == one(resources, "StatefulSet", "kafka")["spec"]["replicas"]


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_producers_are_idempotent_and_writes_wait_for_enough_replicas(kustomization: str) -> None:
    config = config_data(rendered(kustomization))
    assert config["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    replication, min_isr = int(config["CARTERA_REPLICATION_FACTOR"]), int(config["CARTERA_MIN_INSYNC_REPLICAS"])
    assert min_isr <= replication
    if kustomization != "overlays/dev":
        assert replication >= 3 and 1 < min_isr < replication


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_the_jobs_migrate_and_create_topics(kustomization: str) -> None:
    resources = rendered(kustomization)
    migrate = container(one(resources, "Job", "cartera-migrate"), "migrate")
    assert migrate["command"] == ["cartera", "migrate"]
    assert migrate["image"] == container(one(resources, "Deployment", "ingest"))["image"], "one image for all"
    topics = container(one(resources, "Job", "cartera-topics"), "topics")
    assert topics["image"].startswith("apache/kafka:")
    assert topics["command"] == ["sh", "/cartera/create-topics.sh"]
    script = one(resources, "ConfigMap", "cartera-topics-script")["data"]
    assert script["create-topics.sh"] == (K8S / "base" / "create-topics.sh").read_text()


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
def test_the_public_ingress_exposes_only_the_intake_and_unsubscribe_links(kustomization: str) -> None:
    resources = rendered(kustomization)
    ingress = one(resources, "Ingress", "cartera-public")
    routes = {
        path["path"]: path["backend"]["service"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]
    }
    assert set(routes) == {"/v1", "/docs", "/openapi.json", "/unsubscribe"}
    for path, backend in routes.items():
        service = one(resources, "Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}, path
    assert routes["/v1"]["name"] == "ingest" and routes["/unsubscribe"]["name"] == "campaigns"


def test_the_operations_guide_names_every_secret_key() -> None:
    guide = (K8S.parents[1] / "docs" / "operations.md").read_text()
    keys = {
        env["valueFrom"]["secretKeyRef"]["key"]
        for resource in pod_resources(rendered("base"))
        for c in pod_spec(resource)["containers"]  # type: ignore[index]
        for env in c.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }
    assert keys, "no secret references found"
    missing = {key for key in keys if f"`{key}`" not in guide}
    assert not missing, f"docs/operations.md does not say what these Secret keys are: {sorted(missing)}"
