# Sourced by limits.sh, websocket.sh and tls.sh (with L, RESULTS and ROUNDS set): one
# measurement appended to the run's JSON lines, and the order of the servers turned
# each round.

measure() { # label pids round scenario args...
  local label=$1 pids=$2 round=$3; shift 3
  echo "$label: $1 (round $round/$ROUNDS)" >&2
  "$L" "$@" --json --label "$label" --server-pid "$pids" >>"$RESULTS" || echo "$label: $1 failed" >&2
  sleep 1
}
rotate() { # round items...: the items, turned left by the round number
  local round=$1; shift
  local items=("$@") n=$# i
  for ((i = 0; i < n; i++)); do echo "${items[$(((i + round) % n))]}"; done
}
