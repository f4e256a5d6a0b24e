"""create-topics.sh and the Strimzi topics create exactly Cartera's topics, with the configured settings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cartera_common.topics import ALL_TOPICS
from tests.deploy.manifests import K8S, config_data, rendered

SCRIPT = K8S / "base" / "create-topics.sh"

# Stands in for the Kafka image's kafka-topics.sh: records each call, and describes every topic
# with the partition count in $FAKE_PARTITIONS (or $FAKE_ODD_PARTITIONS for the topic $FAKE_ODD_TOPIC).
FAKE_KAFKA_TOPICS = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *--describe*)
    for t in $FAKE_TOPICS; do
      n="$FAKE_PARTITIONS"; [ "$t" = "${FAKE_ODD_TOPIC:-}" ] && n="$FAKE_ODD_PARTITIONS"
      printf 'Topic: %s\\tTopicId: x\\tPartitionCount: %s\\tReplicationFactor: 3\\tConfigs: \\n' "$t" "$n"
      printf '\\tTopic: %s\\tPartition: 0\\tLeader: 1\\tReplicas: 1,2,3\\tIsr: 1,2,3\\n' "$t"
    done ;;
esac
"""


def run_script(tmp_path: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kafka-topics.sh"
    fake.write_text(FAKE_KAFKA_TOPICS)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAFKA_BIN": str(bin_dir),
        "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092",
        "CARTERA_PARTITIONS": "12",
        "CARTERA_REPLICATION_FACTOR": "3",
        "CARTERA_MIN_INSYNC_REPLICAS": "2",
        "FAKE_LOG": str(log),
        "FAKE_TOPICS": " ".join(ALL_TOPICS),
        "FAKE_PARTITIONS": "12",
        **extra,
    }
    shell = shutil.which("sh")
    assert shell is not None
    done = subprocess.run([shell, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    return done, log.read_text().splitlines() if log.exists() else []


def created(calls: list[str]) -> dict[str, str]:
    """topic -> the arguments it was created with."""
    found = {}
    for call in calls:
        if "--create" in call:
            args = call.split()
            found[args[args.index("--topic") + 1]] = call
    return found


def test_the_script_creates_every_topic_with_production_settings(tmp_path: Path) -> None:
    done, calls = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    topics = created(calls)
    assert set(topics) == set(ALL_TOPICS)
    for topic, call in topics.items():
        assert "--if-not-exists" in call, topic
        assert "--partitions 12 --replication-factor 3 --config min.insync.replicas=2" in call, topic
        assert "--bootstrap-server kafka-1:9092" in call, topic


def test_the_script_fails_when_a_topic_has_another_partition_count(tmp_path: Path) -> None:
    done, _ = run_script(tmp_path, FAKE_ODD_TOPIC="scores", FAKE_ODD_PARTITIONS="4")
    assert done.returncode == 1
    assert "topic scores has 4 partitions, expected 12" in done.stderr


@pytest.mark.parametrize("kustomization", ["base", "overlays/production"])
def test_strimzi_topics_match_the_settings_the_services_use(kustomization: str) -> None:
    config = config_data(rendered(kustomization))
    topics = rendered("strimzi")
    assert {t["spec"]["topicName"] for t in topics} == set(ALL_TOPICS)
    for topic in topics:
        spec = topic["spec"]
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2" and topic["kind"] == "KafkaTopic"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]
        assert spec["partitions"] == int(config["CARTERA_PARTITIONS"]), spec["topicName"]
        assert spec["replicas"] == int(config["CARTERA_REPLICATION_FACTOR"]), spec["topicName"]
        assert spec["config"]["min.insync.replicas"] == int(config["CARTERA_MIN_INSYNC_REPLICAS"])
