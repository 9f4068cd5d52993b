#!/usr/bin/env bash
# The deployment of deploy/README.md on one machine: one redis-server (the
# append-only file and noeviction, as the guide recommends), three replicas
# of the built server on it, and HAProxy with deploy/haproxy.cfg itself
# terminating TLS in front of them, with a private CA and a certificate for
# 127.0.0.1 and localhost that this script makes with openssl.
#
#   deploy/one-machine.sh start  [RUN_DIR]     # RUN_DIR defaults to ./im-run
#   deploy/one-machine.sh status [RUN_DIR]
#   deploy/one-machine.sh stop   [RUN_DIR]
#   deploy/one-machine.sh admin  [RUN_DIR] 'set server im_http/r2 state drain'
#
# Everything it makes is in RUN_DIR: ca.pem (for clients), tls/, redis.conf
# and redis/ (the data, kept across stop and start), logs/, pids/ (one PID
# file per process: stop signals those PIDs and nothing else), haproxy.env
# and the admin socket. Ports and settings come from the environment:
#
#   IM_LB_ADDR=127.0.0.1              where HAProxy listens (0.0.0.0: every interface)
#   IM_LB_HTTPS_PORT=8443             HTTPS (curl, browsers)
#   IM_LB_TLS_PORT=4443               TCP over TLS (the CLI)
#   IM_REPLICA_TCP_PORTS="4001 4002 4003"    the replicas, on 127.0.0.1 only
#   IM_REPLICA_HTTP_PORTS="8081 8082 8083"
#   IM_REPLICA_METRICS_PORTS="9464 9465 9466"   their GET /metrics (Prometheus), on 127.0.0.1 only
#   IM_REDIS_PORT=6380                redis-server, on 127.0.0.1 only
#   IM_REDIS_MAXMEMORY=1gb            with maxmemory-policy noeviction
#   IM_REDIS_APPENDFSYNC=everysec     or always (deploy/README.md, Persistence)
#   IM_BLOCK_DURATION=60 IM_TIMEOUT=120      the server's positional arguments
#   IM_CREDENTIALS=<repo>/credentials.txt    users to seed the store with
#   IM_REPLICA_ARGS=                  more server flags, e.g. "--log-level warn"
#   IM_CERT_SAN=IP:127.0.0.1,DNS:localhost   names in a new server certificate
#   IM_START_TIMEOUT=60               seconds to wait for each step of start
#   HAPROXY, REDIS_SERVER, REDIS_CLI  the programs, if not on PATH or in /usr/sbin
#
# The replicas run the built server (`node dist/entries/node.js`, as the
# systemd units in deploy/systemd/ do): start runs `npm run build` first when
# dist/ is missing or older than the sources.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
config=$repo/deploy/haproxy.cfg
self=$0

: "${IM_LB_ADDR:=127.0.0.1}"
: "${IM_LB_HTTPS_PORT:=8443}"
: "${IM_LB_TLS_PORT:=4443}"
: "${IM_REPLICA_TCP_PORTS:=4001 4002 4003}"
: "${IM_REPLICA_HTTP_PORTS:=8081 8082 8083}"
: "${IM_REPLICA_METRICS_PORTS:=9464 9465 9466}"
: "${IM_REDIS_PORT:=6380}"
: "${IM_REDIS_MAXMEMORY:=1gb}"
: "${IM_REDIS_APPENDFSYNC:=everysec}"
: "${IM_BLOCK_DURATION:=60}"
: "${IM_TIMEOUT:=120}"
: "${IM_CREDENTIALS:=$repo/credentials.txt}"
: "${IM_REPLICA_ARGS:=}"
: "${IM_CERT_SAN:=IP:127.0.0.1,DNS:localhost}"
: "${IM_START_TIMEOUT:=60}"

# In the order start starts them; stop goes the other way.
names=(redis replica-1 replica-2 replica-3 haproxy)

usage() {
  cat >&2 <<EOF
usage: $self start  [RUN_DIR]     (RUN_DIR defaults to ./im-run)
       $self status [RUN_DIR]
       $self stop   [RUN_DIR]
       $self admin  [RUN_DIR] 'HAPROXY ADMIN COMMAND'
EOF
  exit 2
}

command=${1:-}
[ $# -gt 0 ] && shift
admin_command=
case $command in
  start | stop | status) [ $# -le 1 ] || usage; run_arg=${1:-im-run} ;;
  admin)
    case $# in
      1) run_arg=im-run; admin_command=$1 ;;
      2) run_arg=$1; admin_command=$2 ;;
      *) usage ;;
    esac
    ;;
  *) usage ;;
esac

if [ "$command" = start ]; then
  mkdir -p "$run_arg"
elif ! [ -d "$run_arg" ]; then
  echo "no run directory $run_arg: nothing was started there"
  [ "$command" = stop ] && exit 0
  exit 3
fi
run=$(cd "$run_arg" && pwd)
pids=$run/pids
logs=$run/logs
tls=$run/tls
socket=$run/admin.sock

# --- the tools --------------------------------------------------------------

# A program on PATH, or in /usr/sbin (not on an ordinary user's PATH on Debian).
find_tool() {
  command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true
}

check_tools() {
  HAPROXY=${HAPROXY:-$(find_tool haproxy)}
  REDIS_SERVER=${REDIS_SERVER:-$(find_tool redis-server)}
  REDIS_CLI=${REDIS_CLI:-$(find_tool redis-cli)}
  local missing=() packages=() tool
  local -A package=([haproxy]=haproxy [redis-server]=redis-server [redis-cli]=redis-tools
    [openssl]=openssl [node]=nodejs [npm]=npm [setsid]=util-linux)
  local -A path=([haproxy]=$HAPROXY [redis-server]=$REDIS_SERVER [redis-cli]=$REDIS_CLI
    [openssl]=$(find_tool openssl) [node]=$(find_tool node) [npm]=$(find_tool npm) [setsid]=$(find_tool setsid))
  for tool in redis-server redis-cli haproxy openssl node npm setsid; do
    if [ -z "${path[$tool]}" ]; then
      missing+=("$tool (Debian package ${package[$tool]})")
      packages+=("${package[$tool]}")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing: ${missing[*]}" >&2
    echo "install them with: apt-get install ${packages[*]}" >&2
    exit 1
  fi
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "node $(node --version) is too old: the server needs 20.19 or later (24 LTS recommended; Debian 13's nodejs is 20.19, Debian 12's is 18)" >&2
    exit 1
  fi
  local version
  version=$("$HAPROXY" -v 2>/dev/null | sed -n 's/^HA-\{0,1\}Proxy version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n 1)
  # shellcheck disable=SC2086
  if [ -z "$version" ] || ! { set -- $version; [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 6 ]; }; }; then
    echo "$HAPROXY is not HAProxy 2.6 or later, which deploy/haproxy.cfg needs" >&2
    exit 1
  fi
  if ! [ -d "$repo/node_modules/ioredis" ]; then
    echo "$repo has no node_modules: run npm ci there first" >&2
    exit 1
  fi
}

# --- processes, by their recorded PIDs ---------------------------------------

# The start time of a live process (clock ticks after boot, from /proc), which
# tells it from a later process given the same PID; fails for a zombie or none.
start_time() {
  local stat rest fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  read -ra fields <<<"$rest"
  [ "${fields[0]}" != Z ] || return 1
  echo "${fields[19]}"
}

pid_of() { cat "$pids/$1.pid" 2>/dev/null; }

# True while the process recorded under this name is alive: the same PID and
# the same start time, so a recycled PID (after a reboot) is never signalled.
running() {
  local pid recorded now
  pid=$(pid_of "$1") || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  recorded=$(cat "$pids/$1.start" 2>/dev/null) || return 1
  now=$(start_time "$pid") || return 1
  [ "$now" = "$recorded" ]
}

forget() { rm -f "$pids/$1.pid" "$pids/$1.start"; }

# Starts a program in a session of its own (so closing the terminal does not
# hang it up), in the run directory, its output appended to its log, and
# records its PID: `exec setsid` in a background subshell keeps the PID the
# program's own.
launch() {
  local name=$1 log=$2
  shift 2
  (cd "$run" && exec setsid "$@") </dev/null >>"$log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pids/$name.pid"
  start_time "$pid" >"$pids/$name.start" || echo gone >"$pids/$name.start"
}

# SIGTERM to every named process at once, then waits for each to exit;
# SIGKILL for one that outlives the grace period.
stop_group() {
  local grace=$1 name pid live=()
  shift
  for name in "$@"; do
    if running "$name"; then
      pid=$(pid_of "$name")
      kill -TERM "$pid" 2>/dev/null || true
      echo "stopping $name (PID $pid)"
      live+=("$name")
    elif [ -e "$pids/$name.pid" ]; then
      echo "$name (PID $(pid_of "$name")) was not running"
      forget "$name"
    fi
  done
  local deadline=$((SECONDS + grace))
  for name in "${live[@]}"; do
    while running "$name" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if running "$name"; then
      pid=$(pid_of "$name")
      echo "$name (PID $pid) still running ${grace}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while running "$name"; do sleep 0.1; done
    fi
    forget "$name"
  done
}

# HAProxy first (no new traffic), then the replicas (each drains: held
# long-polls answered, TCP clients told `shutdown`, exit within 5 s), Redis
# last (it writes its AOF and a snapshot on SIGTERM).
stop_all() {
  stop_group 10 haproxy
  stop_group 15 replica-1 replica-2 replica-3
  stop_group 60 redis
}

# One command on HAProxy's admin socket (node is here anyway; socat is not needed).
lb_admin() {
  node -e '
    const socket = require("node:net").connect(process.argv[1]);
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(process.argv[2] + "\n"));
    socket.on("data", (chunk) => (answer += chunk));
    socket.on("end", () => process.stdout.write(answer));
    socket.on("error", (err) => { process.stderr.write(`admin socket: ${err.message}\n`); process.exit(1); });
    socket.setTimeout(5000, () => { process.stderr.write("admin socket: no answer\n"); process.exit(1); });
  ' "$socket" "$1"
}

# The replicas' rows of `show stat`: backend/server, status, and the last
# health check's result (the TCP side has none: it tracks the HTTP side).
server_states() {
  lb_admin "show stat" |
    awk -F, '$1 ~ /^im_(http|tcp)$/ && $2 ~ /^r[0-9]+$/ { print $1 "/" $2, $18 ($37 != "" ? " " $37 : "") }'
}

# --- start --------------------------------------------------------------------

fail() {
  local log=${2:-}
  echo "start failed: $1" >&2
  if [ -n "$log" ] && [ -f "$log" ]; then
    echo "--- the end of $log:" >&2
    tail -n 30 "$log" >&2
  fi
  exit 1
}

ensure_built() {
  [ -d "$repo/node_modules/typescript" ] || [ -f "$repo/dist/entries/node.js" ] || fail "npm run build needs the dev dependencies: run npm ci in $repo"
  # The same check npm start makes (scripts/build.mjs): a build when dist/ is
  # missing or older than a source.
  (cd "$repo" && node scripts/build.mjs --if-stale) >"$logs/build.log" 2>&1 || fail "npm run build failed" "$logs/build.log"
  echo "server: $(head -n 1 "$logs/build.log")"
}

check_settings() {
  read -ra tcp_ports <<<"$IM_REPLICA_TCP_PORTS"
  read -ra http_ports <<<"$IM_REPLICA_HTTP_PORTS"
  read -ra metrics_ports <<<"$IM_REPLICA_METRICS_PORTS"
  [ ${#tcp_ports[@]} -eq 3 ] && [ ${#http_ports[@]} -eq 3 ] && [ ${#metrics_ports[@]} -eq 3 ] ||
    fail "IM_REPLICA_TCP_PORTS, IM_REPLICA_HTTP_PORTS and IM_REPLICA_METRICS_PORTS name three ports each (deploy/haproxy.cfg has three replicas)"
  local port all=("$IM_LB_HTTPS_PORT" "$IM_LB_TLS_PORT" "$IM_REDIS_PORT" "${tcp_ports[@]}" "${http_ports[@]}" "${metrics_ports[@]}")
  for port in "${all[@]}"; do
    [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || fail "$port is not a port"
  done
  [ "$(printf '%s\n' "${all[@]}" | sort -u | wc -l)" -eq ${#all[@]} ] || fail "two settings name the same port: ${all[*]}"
  [[ $IM_CREDENTIALS = /* ]] || IM_CREDENTIALS=$PWD/$IM_CREDENTIALS
  [ -r "$IM_CREDENTIALS" ] || fail "cannot read the credentials file $IM_CREDENTIALS (IM_CREDENTIALS)"
  # A Unix socket path has room for 107 bytes.
  [ ${#socket} -le 100 ] || fail "the run directory's path is too long for HAProxy's admin socket: $socket"
}

# A private CA and a server certificate it signs, the steps of deploy/README.md
# ("A private CA"). Kept across starts, so a client's copy of ca.pem stays
# good; the server certificate is made again when it is about to expire.
make_certificates() {
  if [ -s "$run/ca.pem" ] && [ -s "$tls/ca.key" ] && [ -s "$tls/server.pem" ] &&
    openssl x509 -checkend 86400 -noout -in "$tls/server.crt" >/dev/null 2>&1; then
    echo "TLS: keeping the CA and server certificate in $run"
    return
  fi
  local key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  {
    if ! [ -s "$run/ca.pem" ] || ! [ -s "$tls/ca.key" ]; then
      openssl req -x509 "${key[@]}" -days 3650 -keyout "$tls/ca.key" -out "$run/ca.pem" -subj "/CN=im one-machine CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    fi
    openssl req "${key[@]}" -keyout "$tls/server.key" -out "$tls/server.csr" -subj /CN=localhost
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$IM_CERT_SAN" >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$run/ca.pem" -CAkey "$tls/ca.key" \
      -CAserial "$tls/ca.srl" -CAcreateserial -days 365 -extfile "$tls/server.ext" -out "$tls/server.crt"
    cat "$tls/server.crt" "$tls/server.key" >"$tls/server.pem"
    chmod 644 "$run/ca.pem"
  } >"$logs/openssl.log" 2>&1 || fail "openssl could not make the certificates" "$logs/openssl.log"
  echo "TLS: made a CA ($run/ca.pem) and a certificate for $IM_CERT_SAN"
}

write_redis_conf() {
  cat >"$run/redis.conf" <<EOF
# Written by deploy/one-machine.sh start: set its IM_REDIS_* variables
# rather than editing this file. deploy/README.md explains each setting.
port $IM_REDIS_PORT
bind 127.0.0.1
daemonize no
dir "$run/redis"
logfile ""
appendonly yes
appendfsync $IM_REDIS_APPENDFSYNC
save 3600 1 300 100
maxmemory $IM_REDIS_MAXMEMORY
maxmemory-policy noeviction
EOF
}

# Waits until `ready` holds, failing as soon as the process under `name` has exited.
wait_for() {
  local what=$1 name=$2 log=$3 ready=$4
  local deadline=$((SECONDS + IM_START_TIMEOUT))
  until $ready; do
    running "$name" || fail "$name exited while waiting for $what" "$log"
    [ $SECONDS -lt $deadline ] || fail "$name: no $what within ${IM_START_TIMEOUT}s (IM_START_TIMEOUT)" "$log"
    sleep 0.2
  done
}

# PING answered by the very redis-server started here (its INFO names its
# PID), not by another one already on the port.
redis_ready() {
  [ "$("$REDIS_CLI" -h 127.0.0.1 -p "$IM_REDIS_PORT" ping 2>/dev/null)" = PONG ] &&
    "$REDIS_CLI" -h 127.0.0.1 -p "$IM_REDIS_PORT" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$(pid_of redis)"
}

# The start-up banner (it says the replica is listening) in what the replica
# wrote during this start: its log keeps earlier runs.
replicas_ready() {
  local k
  for k in 1 2 3; do
    tail -c "+$((log_size[k] + 1))" "$logs/replica-$k.log" | grep -q 'Messaging server listening' || return 1
  done
}

all_running() {
  local name
  for name in "$@"; do
    running "$name" || { echo "$name"; return 1; }
  done
}

# Every replica passed HAProxy's own health check (not merely assumed up, as
# a server is before its first check), so both backends have it in rotation.
haproxy_ready() {
  local states
  states=$(server_states 2>/dev/null) || return 1
  [ "$(grep -c '^im_http/r[0-9]* UP L7OK$' <<<"$states")" -eq 3 ] &&
    [ "$(grep -c '^im_tcp/r[0-9]* UP$' <<<"$states")" -eq 3 ]
}

start() {
  local name
  for name in "${names[@]}"; do
    if running "$name"; then
      echo "$name is already running (PID $(pid_of "$name")) from $run: stop it first ($self stop $run)" >&2
      exit 1
    fi
  done
  check_tools
  check_settings
  umask 077
  mkdir -p "$pids" "$logs" "$tls" "$run/redis"
  for name in "${names[@]}"; do forget "$name"; done
  ensure_built
  make_certificates

  # A start that fails half-way stops what it had started.
  trap 'code=$?; [ $code -eq 0 ] || { echo "stopping what this start started" >&2; stop_all >&2; }' EXIT
  trap 'exit 130' INT TERM

  write_redis_conf
  launch redis "$logs/redis.log" "$REDIS_SERVER" "$run/redis.conf"
  wait_for "answer to PING" redis "$logs/redis.log" redis_ready

  local k
  log_size=()
  # The V8 flags npm start passes (package.json config.nodeFlags).
  local node_flags
  node_flags=$(node -p 'require(process.argv[1]).config?.nodeFlags ?? ""' "$repo/package.json")
  for k in 1 2 3; do
    touch "$logs/replica-$k.log"
    log_size[k]=$(stat -c %s "$logs/replica-$k.log")
    # shellcheck disable=SC2086 # IM_REPLICA_ARGS is a list of flags
    launch "replica-$k" "$logs/replica-$k.log" node $node_flags "$repo/dist/entries/node.js" \
      "${tcp_ports[k - 1]}" "$IM_BLOCK_DURATION" "$IM_TIMEOUT" \
      --host 127.0.0.1 --http-port "${http_ports[k - 1]}" --metrics-port "${metrics_ports[k - 1]}" \
      --redis "redis://127.0.0.1:$IM_REDIS_PORT" --trust-proxy 127.0.0.1/32 \
      --credentials "$IM_CREDENTIALS" $IM_REPLICA_ARGS
  done
  local deadline=$((SECONDS + IM_START_TIMEOUT)) dead
  until replicas_ready; do
    if ! dead=$(all_running replica-1 replica-2 replica-3); then
      fail "$dead exited during start-up" "$logs/$dead.log"
    fi
    [ $SECONDS -lt $deadline ] || fail "the replicas did not start within ${IM_START_TIMEOUT}s (IM_START_TIMEOUT): see $logs/replica-*.log"
    sleep 0.2
  done

  local lb_env=(
    "IM_LB_TCP_BIND=$IM_LB_ADDR:$IM_LB_TLS_PORT"
    "IM_LB_HTTP_BIND=$IM_LB_ADDR:$IM_LB_HTTPS_PORT"
    "IM_LB_CERT=$tls/server.pem"
    "IM_LB_ADMIN_SOCKET=$socket"
  )
  for k in 1 2 3; do
    lb_env+=("IM_REPLICA${k}_TCP=127.0.0.1:${tcp_ports[k - 1]}" "IM_REPLICA${k}_HTTP=127.0.0.1:${http_ports[k - 1]}")
  done
  {
    echo "# The variables deploy/haproxy.cfg read at the last start (set -a; . this file; set +a)."
    for name in "${lb_env[@]}"; do printf '%s=%q\n' "${name%%=*}" "${name#*=}"; done
  } >"$run/haproxy.env"
  env "${lb_env[@]}" "$HAPROXY" -c -q -f "$config" >"$logs/haproxy-check.log" 2>&1 ||
    fail "haproxy -c rejected $config with these variables ($run/haproxy.env)" "$logs/haproxy-check.log"
  launch haproxy "$logs/haproxy.log" env "${lb_env[@]}" "$HAPROXY" -db -f "$config"
  wait_for "health check passed by every replica" haproxy "$logs/haproxy.log" haproxy_ready

  trap - EXIT INT TERM
  report
}

report() {
  local host=$IM_LB_ADDR ca dir script
  [ "$host" != 0.0.0.0 ] || host=127.0.0.1
  ca=$(printf %q "$run/ca.pem")
  dir=$(printf %q "$run")
  script=$(printf %q "$self")
  cat <<EOF

Started, in $run:
  redis      PID $(pid_of redis)  127.0.0.1:$IM_REDIS_PORT, data in $run/redis (append-only file, appendfsync $IM_REDIS_APPENDFSYNC)
  replica-1  PID $(pid_of replica-1)  TCP 127.0.0.1:${tcp_ports[0]}, HTTP 127.0.0.1:${http_ports[0]}, metrics 127.0.0.1:${metrics_ports[0]}
  replica-2  PID $(pid_of replica-2)  TCP 127.0.0.1:${tcp_ports[1]}, HTTP 127.0.0.1:${http_ports[1]}, metrics 127.0.0.1:${metrics_ports[1]}
  replica-3  PID $(pid_of replica-3)  TCP 127.0.0.1:${tcp_ports[2]}, HTTP 127.0.0.1:${http_ports[2]}, metrics 127.0.0.1:${metrics_ports[2]}
  haproxy    PID $(pid_of haproxy)  HTTPS $IM_LB_ADDR:$IM_LB_HTTPS_PORT, TCP over TLS $IM_LB_ADDR:$IM_LB_TLS_PORT, admin socket $socket
Logs in $run/logs; PIDs in $run/pids. The CA that clients trust: $run/ca.pem

Try it over HTTPS (curl and jq: apt-get install curl jq):

    LB=https://$host:$IM_LB_HTTPS_PORT CA=$ca
    T=\$(curl -s --cacert "\$CA" \$LB/login -d '{"username":"yoda","password":"wise"}' -H 'content-type: application/json' | jq -r .token)
    curl -s --cacert "\$CA" \$LB/command -H "authorization: Bearer \$T" -d 'message luke Hey Dude'
    L=\$(curl -s --cacert "\$CA" \$LB/login -d 'username=luke&password=sunrise' | jq -r .token)
    curl -s --cacert "\$CA" "\$LB/events?wait=30" -H "authorization: Bearer \$L" | jq -r '.events[].text'
    # yoda: Hey Dude
    curl -s --cacert "\$CA" \$LB/command -H "authorization: Bearer \$L" -d whoelse | jq -r .text
    # yoda

The command-line client over TLS, and the web client:

    npm run client -- $host $IM_LB_TLS_PORT --tls --ca $ca
    https://$host:$IM_LB_HTTPS_PORT/ (trust $run/ca.pem in the browser first)

Replica states, and taking replica 2 out of rotation (state ready puts it back):

    $script status $dir
    $script admin $dir 'set server im_http/r2 state drain'

Each replica's metrics, for a Prometheus on this machine (not through HAProxy, which refuses /metrics):

    curl -s 127.0.0.1:${metrics_ports[0]}/metrics | grep '^im_tcp_connections'

Stop everything: $script stop $dir
EOF
}

status() {
  local name all=0
  for name in "${names[@]}"; do
    if running "$name"; then
      printf '%-10s running, PID %s\n' "$name" "$(pid_of "$name")"
    else
      all=3
      if [ -e "$pids/$name.pid" ]; then
        printf '%-10s not running (PID %s has exited)\n' "$name" "$(pid_of "$name")"
      else
        printf '%-10s not running\n' "$name"
      fi
    fi
  done
  if running haproxy; then
    echo "HAProxy's view of the replicas:"
    server_states | sed 's/^/  /'
  fi
  return $all
}

case $command in
  start) start ;;
  stop)
    if [ -d "$pids" ]; then stop_all; fi
    echo "stopped: no process recorded in $pids is running"
    ;;
  status) status ;;
  admin)
    running haproxy || { echo "HAProxy is not running from $run" >&2; exit 3; }
    lb_admin "$admin_command"
    ;;
esac
