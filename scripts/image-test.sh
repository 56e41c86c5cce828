#!/usr/bin/env bash
# make image-test: build the image of ./Dockerfile without a Docker engine or an image registry,
# and run it. Slow (minutes) and outside `make test`. Result: docs/operations.md, "The image test".
#
#   1. tools: buildah and mmdebstrap from Debian's packages when missing
#   2. base: the Dockerfile's FROM (python:3.11-slim) is not pulled. A stand-in of the same name
#      is bootstrapped from Debian bookworm's packages with mmdebstrap (python3 3.11, venv,
#      ca-certificates, netbase, tzdata) and committed as docker.io/library/python:3.11-slim in
#      this test's own container storage (never the machine's), then built on with --pull=never
#   3. build: `buildah bud --isolation chroot --format docker` (the docker format keeps the
#      HEALTHCHECK; OCI drops it) with --layers, so a rerun after a code change reuses the
#      dependency layer; the machine's CA bundle is bind-mounted for the RUN steps only, so that
#      pip reaches PyPI through a TLS-inspecting egress; nothing of it stays in the image
#   4. the image's config: HEALTHCHECK, ENTRYPOINT, CMD, USER, as compose.yaml relies on them
#   5. inside the image (`buildah run --isolation chroot`, as the image's user):
#        statehook --help        passes: exit 0, and it lists run, api, check and healthcheck
#        statehook check         on statehook.example.toml at the image's STATEHOOK_CONFIG_FILE,
#                                secrets as placeholders in the environment, Redis on a closed
#                                port. Passes: exit 0, "ok", the Redis warning, no placeholder
#                                secret in the output
#        statehook healthcheck   the image's HEALTHCHECK command, same config and environment,
#                                no Redis. Passes: exit 1 (unhealthy), one line ("worker: redis
#                                unreachable: …"), no traceback: unhealthy, reported cleanly
#   6. with Redis (a redis-server of this machine on a free port, AOF on as in compose.yaml):
#      compose.yaml's own `command` of the worker and the api, then their healthcheck `test`s,
#      inside the image. Passes: both healthchecks exit 0 within 30 s, and both processes exit
#      on SIGTERM
#
# Environment: IMAGE_TEST_DIR (default /var/tmp/statehook-image-test: storage, logs, result.txt),
# IMAGE_TEST_FRESH=1 (bootstrap the base and build without cache), IMAGE_TEST_DOCKERFILE
# (another Dockerfile, e.g. an old one, to see it fail), IMAGE_TEST_REUSE=1 (skip the build and
# test the image the last run built). Needs root (buildah's chroot isolation,
# mmdebstrap): run as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo --preserve-env=IMAGE_TEST_DIR,IMAGE_TEST_FRESH,IMAGE_TEST_DOCKERFILE,IMAGE_TEST_REUSE "$0" "$@"; fi
  echo "image-test: needs root (buildah --isolation chroot, mmdebstrap)" >&2
  exit 2
fi

WORK=${IMAGE_TEST_DIR:-/var/tmp/statehook-image-test}
DOCKERFILE=${IMAGE_TEST_DOCKERFILE:-Dockerfile}
FRESH=${IMAGE_TEST_FRESH:-0}
REUSE=${IMAGE_TEST_REUSE:-0}
TAG=localhost/statehook:image-test
SUITE=bookworm   # python3 is 3.11 there, as the Dockerfile's base
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
mkdir -p "$WORK/logs"
B=(buildah --root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
RESULT="$WORK/result.txt"
: >"$RESULT"
FAILED=0
T0=$(date +%s.%N)
CTR=""
REDIS_PID=""

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "image-test: $*" | tee -a "$RESULT"; }
pass() { say "PASS  $1 ($2 s)${3:+: $3}"; }
fail() { say "FAIL  $1 ($2 s)${3:+: $3}"; FAILED=1; }

cleanup() {
  if [ -n "$CTR" ]; then "${B[@]}" rm "$CTR" >/dev/null 2>&1 || true; fi
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- 1. tools ----------------------------------------------------------------------------------
t=$(now)
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "image-test: installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$WORK/logs/apt.log"
fi
say "tools: $(buildah --version | head -1), mmdebstrap $(mmdebstrap --version | awk '{print $2}')$( \
  [ ${#missing[@]} -gt 0 ] && echo ", installed ${missing[*]}") ($(since "$t") s)"

# ---- 2. base -----------------------------------------------------------------------------------
# every FROM that is not an earlier stage must name one base
mapfile -t bases < <(awk 'toupper($1) == "FROM" { print $2 }' "$DOCKERFILE" | sort -u | grep -v -x -F build || true)
if [ ${#bases[@]} -ne 1 ]; then echo "image-test: expected one base image in $DOCKERFILE, found: ${bases[*]}" >&2; exit 2; fi
BASE=${bases[0]}
case "$BASE" in */*) FULL_BASE=$BASE ;; *) FULL_BASE=docker.io/library/$BASE ;; esac
t=$(now)
if [ "$FRESH" = 1 ] || ! "${B[@]}" inspect --type image "$FULL_BASE" >/dev/null 2>&1; then
  "${B[@]}" rmi -f "$FULL_BASE" >/dev/null 2>&1 || true
  mirror=http://deb.debian.org/debian
  mmdebstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates,netbase,tzdata \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$WORK/base.tar" "deb $mirror $SUITE main" "deb $mirror $SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $SUITE-security main" >"$WORK/logs/mmdebstrap.log" 2>&1 \
    || { tail -20 "$WORK/logs/mmdebstrap.log" >&2; exit 1; }
  base_ctr=$("${B[@]}" from scratch)
  "${B[@]}" add "$base_ctr" "$WORK/base.tar" / >/dev/null
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --label org.opencontainers.image.description="stand-in for $BASE: Debian $SUITE + python3" \
    "$base_ctr"
  "${B[@]}" commit --quiet --format docker --rm "$base_ctr" "$FULL_BASE" >/dev/null
  rm -f "$WORK/base.tar"
  say "base: $FULL_BASE bootstrapped from Debian $SUITE ($(since "$t") s)"
else
  say "base: $FULL_BASE reused from $WORK/storage ($(since "$t") s; IMAGE_TEST_FRESH=1 rebuilds it)"
fi

# ---- 3. build ----------------------------------------------------------------------------------
t=$(now)
cache=(--layers)
[ "$FRESH" = 1 ] && cache=(--layers --no-cache)
if [ "$REUSE" = 1 ] && "${B[@]}" inspect --type image "$TAG" >/dev/null 2>&1; then
  say "build: skipped, $TAG reused (IMAGE_TEST_REUSE=1: for the smoke tests' own changes only)"
elif "${B[@]}" bud --isolation chroot --format docker --pull=never "${cache[@]}" \
     --volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
     -f "$DOCKERFILE" -t "$TAG" . >"$WORK/logs/build.log" 2>&1; then
  size=$("${B[@]}" images --format '{{.Size}}' "$TAG" | head -1)
  "${B[@]}" rmi --prune >/dev/null 2>&1 || true   # earlier builds' leftovers (vfs keeps whole copies)
  pass "build ($DOCKERFILE, $size)" "$(since "$t")"
else
  fail "build ($DOCKERFILE)" "$(since "$t")" "see $WORK/logs/build.log"
  tail -30 "$WORK/logs/build.log" >&2
  exit 1
fi

# ---- 4. the image's config ---------------------------------------------------------------------
t=$(now)
config=$("${B[@]}" inspect --type image "$TAG" | python3 -c '
import json, sys
c = json.load(sys.stdin)["Docker"]["config"]
print(*(json.dumps(v, separators=(",", ":")) for v in ((c.get("Healthcheck") or {}).get("Test"), c.get("Entrypoint"),
      c.get("Cmd"))), c.get("User"))')
want='["CMD","statehook","healthcheck"] ["statehook"] ["run"] statehook:statehook'
image_healthcheck=(statehook healthcheck)   # the HEALTHCHECK's command, as checked here
if [ "$config" = "$want" ]; then
  pass "config: HEALTHCHECK, ENTRYPOINT, CMD, USER" "$(since "$t")" "$config"
else
  fail "config: HEALTHCHECK, ENTRYPOINT, CMD, USER" "$(since "$t")" "got $config, want $want"
fi

# compose.yaml's commands and healthchecks, as shell words (it is JSON-style flow lists throughout)
mapfile -t compose < <(python3 - "$ROOT_DIR/compose.yaml" <<'PY'
import json, shlex, sys
service, section, found = None, None, {}
in_services = False
for raw in open(sys.argv[1], encoding="utf-8"):
    line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
    if not line:
        continue
    indent = len(line) - len(line.lstrip())
    key, _, value = line.strip().partition(":")
    if indent == 0:
        in_services = key == "services"
        continue
    if not in_services:
        continue
    if indent == 2:
        service = key
        continue
    if indent == 4:
        section = key
        if key == "command":
            found[f"{service}.command"] = json.loads(value.strip())
    elif indent == 6 and section == "healthcheck" and key == "test":
        found[f"{service}.healthcheck"] = json.loads(value.strip())
for name in ("worker.command", "worker.healthcheck", "api.command", "api.healthcheck", "redis.command"):
    if name not in found:
        sys.exit(f"compose.yaml: no {name}")
    print(name, shlex.join(found[name]))
PY
)
declare -A C
for line in "${compose[@]}"; do C[${line%% *}]=${line#* }; done
case " ${C[redis.command]} " in
  *" --appendonly yes "*) pass "compose.yaml: Redis with AOF" 0.0 "${C[redis.command]}" ;;
  *) fail "compose.yaml: Redis with AOF" 0.0 "redis command is ${C[redis.command]}" ;;
esac
for svc in worker api; do
  case "${C[$svc.healthcheck]}" in
    "CMD statehook "*) ;;
    *) fail "compose.yaml: $svc healthcheck" 0.0 "not CMD statehook …: ${C[$svc.healthcheck]}" ;;
  esac
done

# ---- 5. inside the image -----------------------------------------------------------------------
CTR=$("${B[@]}" from --pull=never --name statehook-image-test "$TAG" 2>/dev/null \
      || { "${B[@]}" rm statehook-image-test >/dev/null 2>&1; "${B[@]}" from --pull=never --name statehook-image-test "$TAG"; })
"${B[@]}" copy --quiet "$CTR" statehook.example.toml /etc/statehook/statehook.toml
printf '[destinations.console]\nkind = "console"\n\n[[routes]]\nto = ["console"]\n' >"$WORK/minimal.toml"
"${B[@]}" copy --quiet "$CTR" "$WORK/minimal.toml" /etc/statehook/minimal.toml

# run "$@" in the image as its user, with its environment; output in $OUT, exit status in $RC
in_image() {
  set +e
  OUT=$("${B[@]}" run --isolation chroot "$CTR" -- "$@" 2>&1)
  RC=$?
  set -e
  # buildah's own lines about a non-zero exit, not the command's
  OUT=$(grep -v -E '^(subprocess exited with status [0-9]+|Error: exit status [0-9]+)$' <<<"$OUT" || true)
}

closed_port=$(free_port)
secret_a=image-test-placeholder-artistree
secret_w=whsec_$(printf 'image-test-placeholder-webhook!!' | base64)
env_check=(env "STATEHOOK_REDIS_URL=redis://127.0.0.1:$closed_port/0"
  "STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET=$secret_a"
  STATEHOOK_PROVIDERS__REV__CLIENT_KEY=image-test-placeholder-rev-client
  STATEHOOK_PROVIDERS__REV__USER_KEY=image-test-placeholder-rev-user
  STATEHOOK_DESTINATIONS__AUTOMATION__URL=https://automation.invalid/hook
  "STATEHOOK_DESTINATIONS__AUTOMATION__SECRET=$secret_w")

t=$(now)
in_image statehook --help
echo "$OUT" >"$WORK/logs/help.txt"
listed=$(for c in run api check healthcheck; do if grep -qE "^  $c +" <<<"$OUT"; then echo "$c"; fi; done | xargs)
if [ "$RC" = 0 ] && [ "$listed" = "run api check healthcheck" ]; then
  pass "statehook --help" "$(since "$t")" "exit 0, lists $listed"
else
  fail "statehook --help" "$(since "$t")" "exit $RC, lists '$listed': $(head -c 400 <<<"$OUT")"
fi

t=$(now)
in_image "${env_check[@]}" statehook check
echo "$OUT" >"$WORK/logs/check.txt"
shown=$(grep -c -e "$secret_a" -e "$secret_w" -e image-test-placeholder <<<"$OUT" || true)
if [ "$RC" = 0 ] && grep -qx ok <<<"$OUT" && grep -q "Redis unreachable" <<<"$OUT" && [ "$shown" = 0 ] \
   && ! grep -q Traceback <<<"$OUT"; then
  pass "statehook check (statehook.example.toml)" "$(since "$t")" \
    "exit 0, ok, the Redis-unreachable warning, none of the 5 placeholder secrets shown"
else
  fail "statehook check (statehook.example.toml)" "$(since "$t")" "exit $RC, secrets shown: $shown: $(tail -5 <<<"$OUT")"
fi

t=$(now)
in_image "${env_check[@]}" "${image_healthcheck[@]}"
echo "$OUT" >"$WORK/logs/healthcheck-no-redis.txt"
if [ "$RC" = 1 ] && [ "$(wc -l <<<"$OUT")" = 1 ] && grep -qE '^worker: redis unreachable' <<<"$OUT"; then
  pass "statehook healthcheck, no Redis" "$(since "$t")" "exit 1 (unhealthy), one line: $OUT"
else
  fail "statehook healthcheck, no Redis" "$(since "$t")" "exit $RC: $(head -c 400 <<<"$OUT")"
fi

# ---- 6. with Redis: compose.yaml's commands and healthchecks -----------------------------------
t=$(now)
redis_port=$(free_port)
api_port=$(free_port)
mkdir -p "$WORK/redis"
rm -f "$WORK/redis/"*.aof "$WORK/redis/appendonlydir/"* 2>/dev/null || true
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$WORK/redis" --save '' \
  ${C[redis.command]#redis-server} >"$WORK/logs/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
worker_cmd="statehook ${C[worker.command]}"
api_cmd="statehook ${C[api.command]/--port 8080/--port $api_port}"
worker_hc=${C[worker.healthcheck]#CMD }
api_hc=${C[api.healthcheck]#CMD }
api_hc=${api_hc//:8080/:$api_port}
script=$(cat <<SH
export STATEHOOK_REDIS_URL=redis://127.0.0.1:$redis_port/0 STATEHOOK_API__PORT=$api_port
export STATEHOOK_CONFIG_FILE=/etc/statehook/minimal.toml
$worker_cmd >/tmp/worker.log 2>&1 & w=\$!
$api_cmd >/tmp/api.log 2>&1 & a=\$!
probe() { i=0; while [ \$i -lt 60 ]; do if out=\$("\$@" 2>&1); then echo "ok after \$((i / 2)) s: \$out"; return 0; fi; i=\$((i + 1)); sleep 0.5; done; echo "failed: \$out"; return 1; }
hw=\$(probe $worker_hc); rw=\$?
ha=\$(probe $api_hc); ra=\$?
kill -TERM \$w \$a; wait \$w; ew=\$?; wait \$a; ea=\$?
echo "worker healthcheck rc=\$rw \$hw"
echo "api healthcheck rc=\$ra \$ha"
echo "on SIGTERM: worker exit \$ew, api exit \$ea"
[ \$rw = 0 ] && [ \$ra = 0 ] || { tail -5 /tmp/worker.log /tmp/api.log; exit 1; }
SH
)
in_image sh -c "$script"
echo "$OUT" >"$WORK/logs/with-redis.txt"
if [ "$RC" = 0 ]; then
  pass "with Redis: '$worker_cmd' + '$worker_hc', '$api_cmd' + '$api_hc'" "$(since "$t")" \
    "$(tr '\n' ';' <<<"$OUT" | sed 's/;$//; s/;/; /g')"
else
  fail "with Redis: compose.yaml's worker and api" "$(since "$t")" "$(tr '\n' ' ' <<<"$OUT" | head -c 800)"
fi

say "total $(since "$T0") s; $([ "$FAILED" = 0 ] && echo passed || echo FAILED); logs in $WORK/logs"
exit "$FAILED"
