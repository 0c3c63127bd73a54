# Sourced by websocket.sh and tls.sh (with ROOT and RUN set, in ROOT): nginx and Nchan
# from Debian's packages and the release builds, the revision measured, waiting for a
# port, and starting and stopping Halley and nginx (each measurement may want a fresh
# one).

ensure_builds() { # installs nginx and Nchan when missing (as root), builds both binaries
  if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-nchan >/dev/null
  fi
  cargo build --release --quiet -p halley -p halley-load
}
measured_rev() { # the commit measured, marked when the server's sources differ from it
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo "+changes")"
}

wait_port() { # port: until something accepts connections there (10 s)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}
refuse_taken_ports() { # ports...: stop the run if something already listens there
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "127.0.0.1:$port is taken: stop what listens there first" >&2; exit 1
    fi
  done
}
HALLEY=; NGINX=; NGINX_PIDS=
start_halley() { # extra flags...: Halley on 8080 and 8081 (and what the flags add)
  "$ROOT/target/release/halley" --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081 --log-level warn "$@" &
  HALLEY=$!
  wait_port 8080; wait_port 8081
}
stop_halley() { if [ -n "$HALLEY" ]; then kill "$HALLEY" 2>/dev/null || true; wait "$HALLEY" 2>/dev/null || true; fi; HALLEY=; }
start_nginx() { # conf files... -- ports...: nginx on the first conf (the others copied beside it)
  local files=() ports=()
  while [ "$1" != "--" ]; do files+=("$1"); shift; done; shift; ports=("$@")
  rm -rf "$RUN/nginx"; mkdir -p "$RUN/nginx/tmp"; cp "${files[@]}" "$RUN/nginx/"
  nginx -p "$RUN/nginx" -c "$RUN/nginx/$(basename "${files[0]}")" -g 'daemon off;' 2>/dev/null &
  NGINX=$!
  local port; for port in "${ports[@]}"; do wait_port "$port"; done
  sleep 0.3
  NGINX_PIDS="$NGINX,$(pgrep -d, -P "$NGINX")"
}
stop_nginx() { if [ -n "$NGINX" ]; then kill "$NGINX" 2>/dev/null || true; wait "$NGINX" 2>/dev/null || true; fi; NGINX=; }
