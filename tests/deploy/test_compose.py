"""deploy/compose.yaml: valid Compose, started in the right order, with production Kafka settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from tests.deploy.manifests import COMPOSE_FILE, DEPLOY, compose, compose_env
from tests.deploy.settings_env import SERVICE_NAMES

SCHEMA = Path(__file__).with_name("compose-spec.json")
KAFKA_NODES = ("kafka-1", "kafka-2", "kafka-3")


def services() -> dict[str, Any]:
    result: dict[str, Any] = compose()["services"]
    return result


def test_the_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_services_start_after_migration_and_topics_and_restart_on_failure() -> None:
    for name in SERVICE_NAMES:
        service = services()[name]
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "topics": {"condition": "service_completed_successfully"},
        }, name
        assert service["restart"] == "unless-stopped", name
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name


def test_each_service_is_probed_and_published_on_its_own_port() -> None:
    for name in SERVICE_NAMES:
        env = compose_env(name)
        port = env[f"{name.upper()}_PORT"]
        assert env["PORT"] == port, f"{name}: the healthcheck probes PORT, which must be its own port"
        assert any(str(p).endswith(f":{port}") for p in services()[name]["ports"]), name


def test_the_one_shot_steps_wait_for_their_servers() -> None:
    migrate, topics = services()["migrate"], services()["topics"]
    assert migrate["command"] == ["cartera", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert topics["restart"] == "no"
    assert topics["depends_on"] == {node: {"condition": "service_healthy"} for node in KAFKA_NODES}
    assert "healthcheck" in services()["postgres"]
    for node in KAFKA_NODES:
        assert "healthcheck" in services()[node]


def test_kafka_runs_in_kraft_mode_with_one_quorum() -> None:
    voters = {f"{i}@{node}:9093" for i, node in enumerate(KAFKA_NODES, start=1)}
    for i, node in enumerate(KAFKA_NODES, start=1):
        env = compose_env(node)
        assert services()[node]["image"].startswith("apache/kafka:")
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_NODE_ID"] == str(i)
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{node}:9092"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    bootstrap = compose_env("ingest")["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    assert sorted(bootstrap) == [f"{node}:9092" for node in KAFKA_NODES]


def test_writes_are_replicated_and_acknowledged_by_a_quorum() -> None:
    env = compose_env("ingest")
    replication, min_isr = int(env["CARTERA_REPLICATION_FACTOR"]), int(env["CARTERA_MIN_INSYNC_REPLICAS"])
    assert replication <= len(KAFKA_NODES), "more replicas than brokers: topic creation would fail"
    assert 1 < min_isr < replication, "min.insync.replicas must let one broker go without losing acknowledged writes"
    for name in SERVICE_NAMES:
        assert compose_env(name)["KAFKA_ENABLE_IDEMPOTENCE"] == "true", name
    for node in KAFKA_NODES:
        node_env = compose_env(node)
        assert node_env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == str(replication)
        assert node_env["KAFKA_MIN_INSYNC_REPLICAS"] == str(min_isr)


def test_observability_is_an_optional_profile() -> None:
    for name in ("prometheus", "grafana"):
        assert services()[name]["profiles"] == ["observability"]
    for name, service in services().items():
        if name not in ("prometheus", "grafana"):
            assert "profiles" not in service, f"{name} would not start by default"


def test_every_bind_mount_exists() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source} is missing"


def test_the_cartera_image_is_built_from_the_repository_dockerfile() -> None:
    for name in (*SERVICE_NAMES, "migrate"):
        build = services()[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY.parent / "Dockerfile").resolve()
