#!/usr/bin/env bash
# A local Redis Cluster for the tests (issue 12.2): 3 primaries with a replica each, from Debian's
# redis-server, on loopback ports 7101–7106 (REDIS_CLUSTER_BASE_PORT=7101). Idempotent: a healthy
# running cluster is reused, a node that is down (a failover test killed it) is restarted with its
# nodes.conf and rejoins, and only when no cluster exists one is created.
#   scripts/redis-cluster.sh          start or reuse; prints the seed nodes (host:port,…)
#   scripts/redis-cluster.sh stop     stops the nodes this script started
# With REDIS_CLUSTER_OWNER=<token> (the test run's background creation, test/support/cluster-setup.mjs):
# when this call starts every node, the token is written to $DIR/owner, and `stop` with the same
# token stops the cluster only if it is still that owner's; a cluster another run created and this one
# merely reused is left running.
set -euo pipefail

BASE=${REDIS_CLUSTER_BASE_PORT:-7101}
DIR=${REDIS_CLUSTER_DIR:-/tmp/ciba-redis-cluster}
PORTS=$(seq "$BASE" $((BASE + 5)))
cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
up() { [ "$(cli "$1" ping 2>/dev/null)" = PONG ]; }
# One invocation at a time per cluster: the test run creates the private clusters in the background
# (test/support/cluster-setup.mjs) while their suite may already ask for its own; the second caller
# waits here and then finds the cluster healthy instead of resetting one that is half created.
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
# Bounded: a caller stuck holding the lock must fail this run, not hang it.
flock -w 120 9 || { echo "redis-cluster: $DIR/.lock still held after 120 s" >&2; exit 1; }
seeds() { local s=""; for p in $PORTS; do s="$s${s:+,}127.0.0.1:$p"; done; echo "$s"; }
healthy() {
  for p in $PORTS; do
    up "$p" || return 1
    local info; info=$(cli "$p" cluster info 2>/dev/null)
    grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_slots_ok:16384' <<<"$info" \
      && grep -q '^cluster_known_nodes:6' <<<"$info" || return 1
  done
}

if [ "${1:-}" = stop ]; then
  if [ -n "${REDIS_CLUSTER_OWNER:-}" ] && [ "$(cat "$DIR/owner" 2>/dev/null)" != "$REDIS_CLUSTER_OWNER" ]; then
    exit 0
  fi
  for p in $PORTS; do up "$p" && cli "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -f "$DIR/owner"
  exit 0
fi

command -v redis-server >/dev/null || { echo "redis-cluster: redis-server is not installed" >&2; exit 1; }
healthy && { seeds; exit 0; }

started=0
for p in $PORTS; do
  up "$p" && continue
  started=$((started + 1))
  mkdir -p "$DIR/$p"
  # A small node timeout makes a replica take over within a few seconds of its primary's death.
  redis-server --port "$p" --bind 127.0.0.1 --dir "$DIR/$p" --daemonize yes --logfile "$DIR/$p/redis.log" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
    --save "" --appendonly no --maxmemory-policy noeviction >/dev/null 9>&- # the daemon must not hold the lock
done
for p in $PORTS; do for _ in $(seq 1 50); do up "$p" && break; sleep 0.1; done; up "$p" || {
  echo "redis-cluster: node $p did not start (see $DIR/$p/redis.log)" >&2; exit 1; }; done
# Every node started by this call: the cluster is this caller's (see REDIS_CLUSTER_OWNER above).
if [ "$started" = 6 ]; then
  if [ -n "${REDIS_CLUSTER_OWNER:-}" ]; then echo "$REDIS_CLUSTER_OWNER" >"$DIR/owner"; else rm -f "$DIR/owner"; fi
fi

# No slots assigned anywhere: a fresh set of nodes, so make the cluster.
if ! cli "$BASE" cluster info | grep -q '^cluster_slots_assigned:16384'; then
  for p in $PORTS; do cli "$p" flushall >/dev/null; cli "$p" cluster reset hard >/dev/null; done
  # shellcheck disable=SC2046
  redis-cli --cluster create $(for p in $PORTS; do printf '127.0.0.1:%s ' "$p"; done) \
    --cluster-replicas 1 --cluster-yes >/dev/null
fi
for _ in $(seq 1 150); do healthy && { seeds; exit 0; }; sleep 0.2; done
echo "redis-cluster: the cluster on ports $BASE–$((BASE + 5)) did not become healthy" >&2
exit 1
