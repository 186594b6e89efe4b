# Sourced by the scripts: progress lines with the time since the command
# started, so a long first run (installs, a cold build, the stack's start)
# never looks hung. Nested scripts share the start time through FJS_T0.
FJS_T0=${FJS_T0:-$(date +%s)}
export FJS_T0

# elapsed: time since the outermost script started, e.g. 3m07s.
elapsed() {
  local s=$(($(date +%s) - FJS_T0))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# secs_since T0: seconds since T0 (from `date +%s%N`), e.g. 22.7.
secs_since() { local d=$((($(date +%s%N) - $1) / 100000000)); echo "$((d / 10)).$((d % 10))"; }

# step WORDS...: a heading on stderr, stamped with the elapsed time.
step() { printf '\n== [%s] %s\n' "$(elapsed)" "$*" >&2; }

# heartbeat WHAT CMD...: runs CMD; every 20 s while it runs, and once when it
# ends, says on stderr how long it has taken. Returns CMD's exit code.
heartbeat() {
  local what=$1 t0 ticker rc=0
  shift
  t0=$(date +%s)
  (while sleep 20; do echo "   ... $what: $(($(date +%s) - t0)) s so far [$(elapsed)]" >&2; done) &
  ticker=$!
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if ((rc == 0)); then
    echo "   $what: done in $(($(date +%s) - t0)) s [$(elapsed)]" >&2
  else
    echo "   $what: failed (exit $rc) after $(($(date +%s) - t0)) s" >&2
  fi
  return "$rc"
}
