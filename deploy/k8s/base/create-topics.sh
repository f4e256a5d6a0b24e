#!/bin/sh
# Creates Cartera's topics and their dead-letter topics with production settings, then checks that
# every topic has the partition count Cartera expects. Safe to run again: existing topics are kept.
#
# Runs in the official apache/kafka image (compose's `topics` step, the `cartera-topics` Job). The
# services also create missing topics themselves (same partitions and replication, from the same
# settings), but they cannot set topic configs such as min.insync.replicas: run this first.
set -eu

: "${KAFKA_BOOTSTRAP_SERVERS:?KAFKA_BOOTSTRAP_SERVERS is not set}"
PARTITIONS="${CARTERA_PARTITIONS:-4}"
REPLICATION="${CARTERA_REPLICATION_FACTOR:-1}"
MIN_ISR="${CARTERA_MIN_INSYNC_REPLICAS:-1}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"

# The same list as libs/common/src/cartera_common/topics.py (ALL_TOPICS); tests/deploy checks it.
TOPICS="events access customer-changes scores campaign-outcomes"
TOPICS="$TOPICS events.dlq access.dlq customer-changes.dlq scores.dlq campaign-outcomes.dlq"

for topic in $TOPICS; do
  "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --create --if-not-exists \
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config min.insync.replicas="$MIN_ISR"
done

# A key's partition is hash(key) mod the partition count, so one customer's events stay in order
# only while the count stays the same. A topic made earlier with another count is an error to fix
# by hand (Kafka cannot shrink a topic), not something to paper over.
described="$("$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --describe --exclude-internal)"
status=0
for topic in $TOPICS; do
  count="$(printf '%s\n' "$described" | awk -v t="$topic" '
    { for (i = 1; i < NF; i++) if ($i == "Topic:" && $(i + 1) == t) found = 1 }
    found && /PartitionCount:/ { for (i = 1; i < NF; i++) if ($i == "PartitionCount:") { print $(i + 1); exit } }')"
  if [ "$count" != "$PARTITIONS" ]; then
    echo "topic $topic has ${count:-no} partitions, expected $PARTITIONS (CARTERA_PARTITIONS)" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "topics ready: $PARTITIONS partitions, replication $REPLICATION, min.insync.replicas $MIN_ISR"
exit "$status"
