#!/usr/bin/env bash
# A production-shaped stack on one machine: Prefect server (SQLite), an S3-compatible store
# (SeaweedFS `weed mini`) and a Ray head, all bound to 127.0.0.1.
#
#   infra/local-stack.sh up        # start all three, print the environment to export
#   infra/local-stack.sh env       # print it again
#   infra/local-stack.sh status
#   infra/local-stack.sh down      # stop what `up` started
#
# State (databases, S3 data, logs, pid files) lives in $SAM3I_STACK_DIR
# (default ~/.local/state/sam3i-stack). Ports: PREFECT_PORT (4200), S3_PORT (8333), RAY_PORT (6379).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SAM3I_BIN:-$PWD/.venv/bin}
DIR=${SAM3I_STACK_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/sam3i-stack}
PREFECT_PORT=${PREFECT_PORT:-4200}
S3_PORT=${S3_PORT:-8333}
RAY_PORT=${RAY_PORT:-6379}
RAY_CPUS=${RAY_CPUS:-$(nproc)}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-sam3i-local}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-sam3i-local-secret}
BUCKET=${S3_BUCKET:-sam3i}

mkdir -p "$DIR"/{prefect,s3,logs,pids}

running() { [ -f "$DIR/pids/$1" ] && kill -0 "$(cat "$DIR/pids/$1")" 2>/dev/null; }

wait_http() {  # name url seconds
  for _ in $(seq "$(( $3 * 5 ))"); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "error: $1 did not answer at $2 within $3 s; see $DIR/logs/$1.log" >&2
  return 1
}

print_env() {
  cat <<EOF
export PREFECT_API_URL=http://127.0.0.1:$PREFECT_PORT/api
export RAY_ADDRESS=127.0.0.1:$RAY_PORT
export RAY_AUTH_MODE=token   # the head enables token auth (token in ~/.ray/auth_token); drivers must too
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1
# bucket: s3://$BUCKET
EOF
}

up() {
  if ! running prefect; then
    PREFECT_HOME="$DIR/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false setsid \
      "$BIN/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT" >"$DIR/logs/prefect.log" 2>&1 &
    echo $! >"$DIR/pids/prefect"
  fi
  if ! running s3; then
    setsid "$BIN/weed" mini -dir="$DIR/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" \
      -bucket="$BUCKET" -webdav=false -admin.ui=false -master.telemetry=false >"$DIR/logs/s3.log" 2>&1 &
    echo $! >"$DIR/pids/s3"
  fi
  if ! running ray; then
    # --block keeps `ray start` in the foreground: stopping its process group stops this head
    # only (`ray stop` would stop every Ray on the machine). Workers import this checkout.
    PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" setsid "$BIN/ray" start --head --block \
      --node-ip-address=127.0.0.1 --port="$RAY_PORT" --num-cpus="$RAY_CPUS" --include-dashboard=false \
      --disable-usage-stats >"$DIR/logs/ray.log" 2>&1 &
    echo $! >"$DIR/pids/ray"
  fi
  wait_http prefect "http://127.0.0.1:$PREFECT_PORT/api/health" 90
  for _ in $(seq 150); do  # S3 answers 403 without credentials once it is up
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" || true)
    [ "$code" != "000" ] && break
    sleep 0.2
  done
  for _ in $(seq 60); do
    "$BIN/ray" status --address "127.0.0.1:$RAY_PORT" >/dev/null 2>&1 && break
    running ray || { echo "error: the Ray head exited; see $DIR/logs/ray.log" >&2; return 1; }
    sleep 1
  done
  echo "stack up (state in $DIR). Export:" >&2
  print_env
}

stop_group() {  # name: SIGTERM the process group, SIGKILL it if it lingers
  local pid
  pid=$(cat "$DIR/pids/$1")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

down() {
  for name in ray s3 prefect; do
    running "$name" && stop_group "$name"
    rm -f "$DIR/pids/$name"
  done
  echo "stack down" >&2
}

status() {
  for name in prefect s3 ray; do
    if running "$name"; then echo "$name: running (pid $(cat "$DIR/pids/$name"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
