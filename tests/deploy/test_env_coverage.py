"""Every environment variable a service reads is set for it in compose and in every Kubernetes render.

The variables come from the services' settings classes at test time, so a new setting fails these
tests until deploy/compose.yaml and deploy/k8s set it.
"""

from __future__ import annotations

import pytest

from tests.deploy.manifests import (
    CARTERA_KUSTOMIZATIONS,
    compose,
    compose_env,
    container,
    container_env_names,
    one,
    rendered,
)
from tests.deploy.settings_env import SERVICE_NAMES, service_env_names


def test_the_introspection_finds_shared_and_own_settings() -> None:
    names = service_env_names("ingest")
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_ENABLE_IDEMPOTENCE", "INGEST_PORT"} <= names
    assert "SEGMENTER_PORT" not in names


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_compose_sets_every_variable_the_service_reads(service: str) -> None:
    missing = service_env_names(service) - set(compose_env(service))
    assert not missing, f"deploy/compose.yaml: {service} reads {sorted(missing)} but they are not set"


@pytest.mark.parametrize("kustomization", CARTERA_KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_kubernetes_sets_every_variable_the_service_reads(service: str, kustomization: str) -> None:
    resources = rendered(kustomization)
    deployment = one(resources, "Deployment", service)
    missing = service_env_names(service) - container_env_names(resources, container(deployment))
    assert not missing, f"deploy/k8s/{kustomization}: {service} reads {sorted(missing)} but they are not set"


def test_compose_runs_each_service_with_its_own_command() -> None:
    for service in SERVICE_NAMES:
        assert compose()["services"][service]["command"] == ["python", "-m", service]


def test_the_migration_gets_its_database_everywhere() -> None:
    assert compose_env("migrate").get("DATABASE_URL")
    for kustomization in CARTERA_KUSTOMIZATIONS:
        resources = rendered(kustomization)
        job = one(resources, "Job", "cartera-migrate")
        assert "DATABASE_URL" in container_env_names(resources, container(job, "migrate"))


TOPIC_SETTINGS = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "CARTERA_PARTITIONS",
    "CARTERA_REPLICATION_FACTOR",
    "CARTERA_MIN_INSYNC_REPLICAS",
}


def test_the_topic_step_gets_the_same_kafka_settings_as_the_services() -> None:
    topics = compose_env("topics")
    assert set(topics) >= TOPIC_SETTINGS
    for service in SERVICE_NAMES:
        env = compose_env(service)
        assert {k: env[k] for k in TOPIC_SETTINGS} == {k: topics[k] for k in TOPIC_SETTINGS}
    for kustomization in CARTERA_KUSTOMIZATIONS:
        resources = rendered(kustomization)
        job = one(resources, "Job", "cartera-topics")
        assert container_env_names(resources, container(job, "topics")) >= TOPIC_SETTINGS
