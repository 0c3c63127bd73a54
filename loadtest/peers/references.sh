# Sourced by limits.sh and syscalls.sh (with ROOT, RUN and L set, in ROOT): installs
# nginx and Nchan from Debian's packages when missing (as root), starts
# Halley on its defaults (8080, admin 8081), the minimal responder (8096), the writev
# floor (8097, publishes 8098) and nginx with Nchan (loadtest/peers/nginx.conf), waits
# until each listens, and stops them all when the script exits. Sets HALLEY,
# MINIMAL, FLOOR, NGINX (the master) and NGINX_PIDS (the master and its workers).

PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { # port: until something accepts connections there (10 s)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

start_references() {
  local port
  if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-nchan >/dev/null
  fi
  for port in 8080 8081 8090 8091 8094 8095 8096 8097 8098; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "127.0.0.1:$port is taken: stop what listens there first" >&2; return 1
    fi
  done
  "$ROOT/target/release/halley" --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081 --log-level warn &
  HALLEY=$!; PIDS+=("$HALLEY")
  "$L" minimal-responder --listen 127.0.0.1:8096 2>/dev/null &
  MINIMAL=$!; PIDS+=("$MINIMAL")
  "$L" writev-floor --listen 127.0.0.1:8097 --publish 127.0.0.1:8098 2>/dev/null &
  FLOOR=$!; PIDS+=("$FLOOR")
  mkdir -p "$RUN/nginx/tmp"; cp loadtest/peers/nginx.conf "$RUN/nginx/"
  nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -g 'daemon off;' 2>/dev/null &
  NGINX=$!; PIDS+=("$NGINX")
  for port in 8080 8081 8090 8091 8094 8095 8096 8097 8098; do wait_port $port; done
  sleep 0.3
  NGINX_PIDS="$NGINX,$(pgrep -d, -P "$NGINX")"
}
