# Shared by the bench scripts (sourced): the release `dales` binary and wall-clock helpers.

# DALES: the release binary, built here unless given.
if [ -z "${DALES:-}" ]; then
  cargo build --release -q -p dales-cli
  DALES="${CARGO_TARGET_DIR:-target}/release/dales"
fi

# Seconds taken by a command (its output discarded).
seconds() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

# The median of the numbers on stdin (space-separated).
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
