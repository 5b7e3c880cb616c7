#!/usr/bin/env bash
# `make fuzz`: runs every property test (the `proptests` modules of event-model, queue,
# collector and batcher) for a bounded time, with fresh random inputs each round.
#
#   FUZZ_SECONDS=300 make fuzz       # total budget, shared evenly by the properties (default 300)
#   FUZZ_FILTER=tracker make fuzz    # only the properties whose path contains this
#
# Each property runs repeatedly with PROPTEST_CASES cases a round (doubling while a round takes
# under 5 s) until its share of the budget is spent. A failure stops the run: proptest prints
# the shrunk input and saves its seed under the crate's proptest-regressions/, which is
# committed, so every later `cargo test` tries it first.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${FUZZ_SECONDS:-300}
filter=${FUZZ_FILTER:-}
crates=(event-model queue collector batcher)

binaries=()
for crate in "${crates[@]}"; do
  binary=$(cargo test -p "$crate" --lib --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | head -1 | cut -d'"' -f4)
  [[ -n "$binary" ]] || { echo "fuzz: could not build the tests of $crate" >&2; exit 1; }
  binaries+=("$binary")
done

# Every property as "binary test-name".
properties=()
for binary in "${binaries[@]}"; do
  while read -r name; do
    [[ -z "$filter" || "$name" == *"$filter"* ]] && properties+=("$binary $name")
  done < <("$binary" --list --format terse 2>/dev/null | sed -n 's/: test$//p' | grep '::proptests::')
done
count=${#properties[@]}
(( count > 0 )) || { echo "fuzz: no property matches ${filter:-anything}" >&2; exit 1; }
share=$(( budget / count ))
(( share >= 1 )) || share=1
echo "fuzz: $count properties, ${share} s each (FUZZ_SECONDS=$budget)"

total_cases=0
started=$SECONDS
for entry in "${properties[@]}"; do
  binary=${entry%% *}
  name=${entry#* }
  cases=64
  ran=0
  rounds=0
  begin=$SECONDS
  while (( SECONDS - begin < share )); do
    round_start=$SECONDS
    if ! PROPTEST_CASES=$cases RUST_BACKTRACE=0 "$binary" --exact "$name" --test-threads 1 -q > /tmp/fuzz-round.$$ 2>&1; then
      cat /tmp/fuzz-round.$$
      rm -f /tmp/fuzz-round.$$
      echo "fuzz: FAILED $name after $((ran)) cases; the shrunk input is above" >&2
      exit 1
    fi
    ran=$(( ran + cases ))
    rounds=$(( rounds + 1 ))
    (( SECONDS - round_start < 5 && cases < 1000000 )) && cases=$(( cases * 2 ))
  done
  rm -f /tmp/fuzz-round.$$
  total_cases=$(( total_cases + ran ))
  printf 'fuzz: %-95s %9d cases in %3d rounds, %4d s\n' "$name" "$ran" "$rounds" $(( SECONDS - begin ))
done
echo "fuzz: $total_cases cases of $count properties in $(( SECONDS - started )) s, no failure"
