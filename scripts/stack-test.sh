#!/usr/bin/env bash
# The bar's stack, run for real without a Docker engine: the image's root
# filesystem and user, one network namespace per service of compose.yaml on
# a bridge of its own, and the drill of what the stack must survive: the
# server killed under pouring taps, a tap cut off the network, the taps
# started before the server, the whole stack restarted, and tokens.
#
#   sudo scripts/stack-test.sh
#
# Everything it reads comes from the Dockerfile (the build steps, the
# image's layout, USER, ENV, HEALTHCHECK, CMD) and from `docker-compose
# config` (each service's environment, command, volume and read_only), so
# the drill cannot drift from the files. It needs root, ip (iproute2),
# unshare and chroot (util-linux, coreutils), docker-compose and its
# python3-yaml, curl and go. Everything it makes (namespaces, links, files)
# is removed on every exit. Addresses are only ever set inside its own
# namespaces; the host's interfaces and routes are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '%s\n' "$*"; }
fail() {
  say "FAIL: $*"
  for log in "${work:-/nonexistent}"/*.log; do
    [ -f "$log" ] && say "--- the end of $(basename "$log")" && tail -8 "$log"
  done
  exit 1
}
[ "$(id -u)" = 0 ] || fail "the drill needs root (namespaces, chroot): run it with sudo"
for tool in ip unshare chroot docker-compose curl go; do
  command -v "$tool" >/dev/null || fail "$tool is missing: install iproute2, util-linux, coreutils, docker-compose, curl and go"
done
python=$(command -v /usr/bin/python3 || command -v python3)
chroot=$(command -v chroot)
"$python" -c 'import yaml' 2>/dev/null || fail "python3 cannot import yaml: install python3-yaml"

work=$(mktemp -d /tmp/altair-stack.XXXXXX)
net=alt$$ # the prefix of every namespace made here
namespaces=()
declare -A pid=()

cleanup() {
  for svc in "${!pid[@]}"; do kill -9 "${pid[$svc]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# until_true SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, every
# 0.2 s, and fails the drill if it has not after SECONDS.
until_true() {
  local limit=$1 what=$2
  shift 2
  local end=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || fail "$what: not within ${limit} s"
    sleep 0.2
  done
}

# --- the image, from the Dockerfile ---------------------------------------

# describe ENV_FILE: the Dockerfile and compose.yaml (read through
# `docker-compose config` with ENV_FILE for its variables) as shell arrays.
describe() {
  docker-compose --env-file "$1" -f compose.yaml config >"$work/compose.yaml"
  "$python" - "$work/compose.yaml" <<'PY'
import json, re, shlex, sys, yaml

def arr(name, items):
    print(f"{name}=(" + " ".join(shlex.quote(str(i)) for i in items) + ")")

print("image_env=()")
stage, steps, copies = None, [], []
text = re.sub(r"\\\n", " ", open("Dockerfile").read())
for line in text.splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    op, _, rest = line.partition(" ")
    op = op.upper()
    if op == "FROM":
        stage = rest.split()[-1] if " AS " in rest.upper() else "final"
    elif op == "RUN" and stage != "final":
        steps.append(re.sub(r"(?<![\w.$])/out\b", "$OUT", rest))
    elif op == "COPY" and "--from=" in rest:
        words = rest.split()
        chown = next((w.split("=", 1)[1] for w in words if w.startswith("--chown=")), "")
        paths = [w for w in words if not w.startswith("--")]
        for src in paths[:-1]:
            dest = paths[-1]
            if dest.endswith("/") or len(paths) > 2:
                dest = dest.rstrip("/") + "/" + src.rstrip("/").split("/")[-1]
            copies.append("|".join([re.sub(r"^/out\b", "$OUT", src), dest, chown]))
    elif op == "USER":
        print(f"image_user={shlex.quote(rest)}")
    elif op == "ENV":
        arr("image_env+", shlex.split(rest))
    elif op == "HEALTHCHECK":
        arr("healthcheck", json.loads(rest.split("CMD", 1)[1]))
    elif op == "CMD":
        arr("image_cmd", json.loads(rest))
arr("build_steps", steps)
arr("copies", copies)

services = yaml.safe_load(open(sys.argv[1]))["services"]
arr("services", services)
for name, svc in services.items():
    env = svc.get("environment") or {}
    arr(f"env_{name}", [f"{k}={'' if v is None else v}" for k, v in env.items()])
    arr(f"cmd_{name}", svc.get("command") or [])
    print(f"ro_{name}={1 if svc.get('read_only') else 0}")
    vols = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in svc.get("volumes") or []]
    arr(f"volumes_{name}", [":".join(v.split(":")[:2]) for v in vols])
PY
}

: >"$work/empty.env"
describe "$work/empty.env" >"$work/stack.sh" || fail "docker-compose config or the Dockerfile cannot be read"
. "$work/stack.sh"
[ ${#build_steps[@]} -gt 0 ] && [ ${#copies[@]} -gt 0 ] && [ -n "${image_user:-}" ] && [ ${#healthcheck[@]} -gt 0 ] ||
  fail "the Dockerfile has no build steps, COPY --from, USER or HEALTHCHECK that the drill could read"

say "== the image, built as the Dockerfile builds it"
export OUT=$work/out
mkdir -p "$OUT"
for step in "${build_steps[@]}"; do
  say "RUN $step"
  (cd "$repo" && sh -c "$step")
done
image=$work/image # what the image holds, and nothing else
mkdir -p "$image"
for copy in "${copies[@]}"; do
  IFS='|' read -r src dest chown <<<"$copy"
  src=${src/\$OUT/$OUT}
  mkdir -p "$(dirname "$image$dest")"
  cp -a "$src" "$image$dest"
  [ -z "$chown" ] || chown -R "$chown" "$image$dest"
done
say "image root: $(du -sb "$image" | cut -f1) bytes in $(find "$image" | wc -l) entries:"
find "$image" -mindepth 1 -printf '  /%P %u:%g %M %s bytes\n'
for must_not in bin/sh lib etc/ssl; do
  [ ! -e "$image/$must_not" ] || fail "the image holds /$must_not"
done

# --- the network: a bridge in a namespace of its own, one namespace a service

ns() { printf '%s-%s' "$net" "$1"; }
ip netns add "$(ns lan)" || fail "cannot create a network namespace here (ip netns add): the drill needs root on Linux"
namespaces+=("$(ns lan)")
ip -n "$(ns lan)" link add br0 type bridge
ip -n "$(ns lan)" addr add 10.77.0.1/24 dev br0 # the bar's laptop, which the drill speaks from
ip -n "$(ns lan)" link set br0 up
ip -n "$(ns lan)" link set lo up
declare -A addr=()
hosts="127.0.0.1 localhost"$'\n'
n=10
for svc in "${services[@]}"; do
  ip netns add "$(ns "$svc")"
  namespaces+=("$(ns "$svc")")
  ip -n "$(ns lan)" link add "v-$svc" type veth peer name eth0 netns "$(ns "$svc")"
  ip -n "$(ns lan)" link set "v-$svc" master br0 up
  addr[$svc]=10.77.0.$n
  ip -n "$(ns "$svc")" addr add "${addr[$svc]}/24" dev eth0
  ip -n "$(ns "$svc")" link set eth0 up
  ip -n "$(ns "$svc")" link set lo up
  hosts+="${addr[$svc]} $svc"$'\n'
  n=$((n + 1))
done
say "network: bridge br0 in $(ns lan) (10.77.0.1); $(for s in "${services[@]}"; do printf '%s %s; ' "$s" "${addr[$s]}"; done)"

# A container's root: the image read-only, with the /etc/hosts the engine
# adds so that service names resolve.
root=$work/root
cp -a "$image" "$root"
mkdir -p "$root/etc"
printf '%s' "$hosts" >"$root/etc/hosts"
touch "$work/before-the-drill"

# The mounts of one container, made in a mount namespace of its own.
cat >"$work/container" <<'SH'
#!/bin/sh
# container ROOT READ_ONLY VOLUME... -- COMMAND...: VOLUME is DIR:TARGET.
set -e
root=$1 ro=$2
shift 2
mount --bind "$root" "$root"
[ "$ro" = 1 ] && mount -o remount,bind,ro "$root"
while [ "$1" != -- ]; do
  mount --bind "${1%%:*}" "$root${1#*:}"
  shift
done
shift
exec "$@"
SH
chmod +x "$work/container"

# volume NAME: the directory of a named volume, made as an engine makes a
# new one: with what the image holds at its target, owned alike.
volume() {
  local dir=$work/volumes/$1-$generation
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    cp -a "$image$2/." "$dir/"
    chown --reference="$image$2" "$dir"
  fi
  printf '%s' "$dir"
}
generation=1

# start SERVICE [NAME=VALUE...]: runs SERVICE as its container would, with
# the image's ENV, then the service's environment, then NAME=VALUE.
start() {
  local svc=$1
  shift
  local -n env_of=env_$svc cmd_of=cmd_$svc vols_of=volumes_$svc
  local ro=ro_$svc mounts=() cmd=("${cmd_of[@]}")
  [ ${#cmd[@]} -gt 0 ] || cmd=("${image_cmd[@]}")
  for v in "${vols_of[@]}"; do mounts+=("$(volume "${v%%:*}" "${v#*:}"):${v#*:}"); done
  say "start $svc"
  ip netns exec "$(ns "$svc")" unshare --mount --propagation private "$work/container" "$root" "${!ro}" "${mounts[@]}" -- \
    env -i "${image_env[@]}" "${env_of[@]}" "$@" "$chroot" --userspec="$image_user" "$root" "${cmd[@]}" \
    >>"$work/$svc.log" 2>&1 &
  pid[$svc]=$!
}

# stop SERVICE: SIGTERM, as `docker compose stop` sends; it must exit 0.
stop() {
  local p=${pid[$1]} status=0
  kill -TERM "$p"
  until_true 15 "$1 to stop on SIGTERM" eval "! kill -0 $p 2>/dev/null"
  wait "$p" || status=$?
  unset "pid[$1]"
  [ "$status" = 0 ] || fail "$1 exited $status on SIGTERM; see its log:$(tail -5 "$work/$1.log")"
}

alive() { kill -0 "${pid[$1]}" 2>/dev/null; }

# healthy: the image's HEALTHCHECK, run in the server's container.
healthy() {
  local -n env_of=env_server
  ip netns exec "$(ns server)" env -i "${image_env[@]}" "${env_of[@]}" \
    "$chroot" --userspec="$image_user" "$root" "${healthcheck[@]}" >/dev/null 2>&1
}

await_healthy() {
  local start=$SECONDS
  until_true 30 "the server to turn healthy" healthy
  say "ok   the server is healthy (HEALTHCHECK ${healthcheck[*]}) after $((SECONDS - start)) s"
}

# api PATH: GET from the bar's laptop, with the admin's token when there is one.
api() {
  local auth=()
  [ -z "${admin:-}" ] || auth=(-H "Authorization: Bearer $admin")
  ip netns exec "$(ns lan)" curl -sf --max-time 5 "${auth[@]}" "http://${addr[server]}:8338$1"
}

# stored: every stored pour's pourId, a line each, from the CSV export.
stored() { api /api/beers.csv | tail -n +2 | cut -d, -f6; }

# poured TAP [FROM_LINE [TO_LINE]]: the pourIds TAP's log names as poured,
# between two line numbers of its log.
poured() {
  sed -n "${2:-1},${3:-\$}p" "$work/$1.log" | sed -n 's/.*msg=poured pourId=\([^ ]*\).*/\1/p'
}
# delivered TAP [TO_LINE]: the pourIds TAP's log names as acknowledged.
delivered() {
  sed -n "1,${2:-\$}p" "$work/$1.log" | sed -n 's/.*msg="pour \(was \)\{0,1\}delivered\( before\)\{0,1\}" pourId=\([^ ]*\).*/\3/p'
}
lines() { wc -l <"$work/$1.log"; }

# all_stored_once IDS_FILE: every pourId in the file is stored exactly once.
all_stored_once() {
  stored | sort >"$work/stored"
  [ -z "$(sort "$1" | comm -23 - <(sort -u "$work/stored"))" ]
}
duplicates() { sort "$work/stored" | grep -v '^$' | uniq -d | wc -l; }
taps=()
for svc in "${services[@]}"; do [ "$svc" = server ] || taps+=("$svc"); done

# tap_ids SERVICE: its TAP_ID.
tap_id() {
  local -n env_of=env_$1
  for kv in "${env_of[@]}"; do [ "${kv%%=*}" != TAP_ID ] || printf '%s' "${kv#*=}"; done
}

# --- the drill ------------------------------------------------------------

say "" && say "== the stack, started as docker compose up starts it"
start server
await_healthy
for tap in "${taps[@]}"; do start "$tap"; done
online() { [ "$(api /api/taps | grep -o '"online":true' | wc -l)" -ge ${#taps[@]} ]; }
until_true 30 "every tap to subscribe" online
each_poured() { for tap in "${taps[@]}"; do [ -n "$(delivered "$tap")" ] || return 1; done; }
until_true 30 "every tap to deliver a pour" each_poured
report=$(api /api/report)
for tap in "${taps[@]}"; do
  grep -q "\"$(tap_id "$tap")\":{\"beers\":[1-9]" <<<"$report" || fail "the report does not count $tap: $report"
done
say "ok   ${#taps[@]} taps online and pouring; the report counts each: $report"

say "" && say "== failover: kill -9 the server while the taps pour"
declare -A mark=()
for tap in "${taps[@]}"; do mark[$tap]=$(lines "$tap"); done
for tap in "${taps[@]}"; do delivered "$tap" "${mark[$tap]}"; done >"$work/acked"
kill -9 "${pid[server]}"
wait "${pid[server]}" 2>/dev/null || true
unset 'pid[server]'
down_at=$SECONDS
made_while_down() { for tap in "${taps[@]}"; do [ "$(poured "$tap" "${mark[$tap]}" | wc -l)" -ge 3 ] || return 1; done; }
until_true 40 "each tap to pour three times while the server is down" made_while_down
start server
await_healthy
down=$((SECONDS - down_at))
for tap in "${taps[@]}"; do poured "$tap" "${mark[$tap]}"; done >"$work/while-down"
until_true 60 "every pour made while the server was down to be stored" all_stored_once "$work/while-down"
all_stored_once "$work/acked" || fail "a pour acknowledged before the kill is gone"
[ "$(duplicates)" = 0 ] || fail "$(duplicates) pourIds are stored twice"
for tap in "${taps[@]}"; do alive "$tap" || fail "$tap exited while the server was down"; done
say "ok   the server was down ${down} s; the taps poured $(wc -l <"$work/while-down") meanwhile, all delivered, 0 duplicates; the $(wc -l <"$work/acked") pours acknowledged before the kill are all stored"

cut_tap=${taps[1]:-${taps[0]}}
say "" && say "== network cut: $cut_tap's link down, then up"
for tap in "${taps[@]}"; do mark[$tap]=$(lines "$tap"); done
ip -n "$(ns "$cut_tap")" link set eth0 down
cut_at=$SECONDS
others_went_on() {
  for tap in "${taps[@]}"; do
    if [ "$tap" = "$cut_tap" ]; then
      [ "$(poured "$tap" "${mark[$tap]}" | wc -l)" -ge 3 ] || return 1
    else
      [ -n "$(sed -n "${mark[$tap]},\$p" "$work/$tap.log" | grep 'msg="pour delivered"')" ] || return 1
    fi
  done
}
until_true 40 "$cut_tap to pour three times cut off while the others deliver" others_went_on
ip -n "$(ns "$cut_tap")" link set eth0 up
cut=$((SECONDS - cut_at))
poured "$cut_tap" "${mark[$cut_tap]}" >"$work/while-cut"
until_true 60 "every pour $cut_tap made while cut off to be stored" all_stored_once "$work/while-cut"
[ "$(duplicates)" = 0 ] || fail "$(duplicates) pourIds are stored twice"
say "ok   $cut_tap was cut off ${cut} s and poured $(wc -l <"$work/while-cut") meanwhile, all delivered once; the others went on pouring"

say "" && say "== the whole stack stopped, then started taps first, on the same /data"
api '/api/beers.csv' | tail -n +2 | sort >"$work/before-restart"
last_id=$(cut -d, -f1 "$work/before-restart" | sort -n | tail -1)
for tap in "${taps[@]}"; do stop "$tap"; done
stop server
say "ok   every service stopped on SIGTERM with status 0"
for tap in "${taps[@]}"; do
  mark[$tap]=$(lines "$tap")
  start "$tap"
done
waiting() {
  for tap in "${taps[@]}"; do
    [ -n "$(poured "$tap" "${mark[$tap]}")" ] && sed -n "${mark[$tap]},\$p" "$work/$tap.log" | grep -q 'could not deliver' || return 1
  done
}
until_true 30 "the taps, started first, to pour and wait for the server" waiting
start server
await_healthy
for tap in "${taps[@]}"; do poured "$tap" "${mark[$tap]}"; done >"$work/taps-first"
until_true 60 "the pours made before the server was up to be stored" all_stored_once "$work/taps-first"
for tap in "${taps[@]}"; do alive "$tap" || fail "$tap exited while it waited for the server"; done
api '/api/beers.csv' | tail -n +2 | sort >"$work/after-restart"
[ -z "$(comm -23 "$work/before-restart" "$work/after-restart")" ] || fail "pours stored before the restart changed or went: $(comm -23 "$work/before-restart" "$work/after-restart" | head -3)"
first_new=$(api '/api/beers.csv' | tail -n +2 | cut -d, -f1 | sort -n | awk -v last="$last_id" '$1 > last' | head -1)
[ -n "$first_new" ] && [ "$first_new" -gt "$last_id" ] || fail "no pour after the restart has an id after $last_id"
say "ok   the taps waited, never exited, and delivered their $(wc -l <"$work/taps-first") early pours once; the $(wc -l <"$work/before-restart") pours kept their ids, and new ids go on from $last_id ($first_new)"
for tap in "${taps[@]}"; do stop "$tap"; done
stop server

say "" && say "== tokens from scripts/tokens.sh; ${taps[-1]} with a wrong one"
scripts/tokens.sh >"$work/tokens.env"
describe "$work/tokens.env" >"$work/stack.sh" || fail "docker-compose config cannot read the tokens"
. "$work/stack.sh"
admin=$(sed -n 's/^ADMIN_TOKEN=//p' "$work/tokens.env")
wrong_tap=${taps[-1]}
generation=2 # a fresh volume
mark[$wrong_tap]=$(lines "$wrong_tap")
start server
await_healthy
for tap in "${taps[@]}"; do
  if [ "$tap" = "$wrong_tap" ]; then start "$tap" TAP_TOKEN=not-a-token-of-this-bar; else start "$tap"; fi
done
refusal() { sed -n "${mark[$wrong_tap]},\$p" "$work/$wrong_tap.log" | grep -m1 -o 'could not deliver a pour; retrying.*err="401.*'; }
refused() { refusal >/dev/null; }
others_pour() {
  for tap in "${taps[@]}"; do
    [ "$tap" = "$wrong_tap" ] || api "/api/beers?tapId=$(tap_id "$tap")" | grep -q '"total":[1-9]' || return 1
  done
}
until_true 30 "$wrong_tap to be refused and say so" refused
until_true 30 "the other taps to pour with their tokens" others_pour
[ -n "$(api "/api/beers?tapId=$(tap_id "$wrong_tap")" | grep '"total":0')" ] || fail "a pour of $wrong_tap was stored"
! grep -q -e not-a-token-of-this-bar -e "$admin" "$work/server.log" || fail "a token is in the server's log"
grep -q '"reason"\|reason=' "$work/server.log" || fail "the server's log does not say why it refused"
say "ok   $wrong_tap is refused, none of its pours is stored, and it logs: $(refusal | sed 's/\\"/"/g' | cut -c1-240)"
say "ok   the other taps pour with their tokens; the server's log names no token"
for tap in "${taps[@]}"; do stop "$tap"; done
stop server

say "" && say "== what the containers wrote"
written=$(find "$root" -newer "$work/before-the-drill" -not -path "$root" | head -5)
[ -z "$written" ] || fail "a container wrote outside its volume: $written"
! grep -qi "read-only file system" "$work"/*.log || fail "a service tried to write to its read-only root"
for svc in "${services[@]}"; do
  ro=ro_$svc
  [ "${!ro}" = 1 ] && say "ok   $svc ran on a read-only root (read_only: true), its volumes writable" || say "note $svc's root was writable: compose.yaml does not set read_only"
done
say "ok   nothing but the volumes was written"
say "" && say "== the stack drill passed"
