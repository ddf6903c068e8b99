#!/usr/bin/env bash
# The embassy sensor-ingest demo, end to end: the host build, the firmware for Cortex-M4F
# (mps2-an386) and Cortex-M0 (micro:bit) under QEMU, and the on-target tests of the batching
# semantics. Checks exit statuses
# and the printed lines. Installs the two Rust targets and qemu-system-arm when missing.
# Run from anywhere; exits non-zero on the first failure.
#
# Size (the fair minimal pair of examples-embassy/size-report.sh): the run fails when what
# prefetch-batch adds grows past its ceiling (examples-embassy/budget/ceiling: what it adds now),
# or past the flash budget (met, so enforced), on either target. SIZE_BUDGET=enforce also fails it
# when prefetch-batch is over its static RAM budget; the default, SIZE_BUDGET=report, prints the
# table and says "over budget (not enforced yet)".
set -euo pipefail
cd "$(dirname "$0")/.."

FW=examples-embassy/firmware
BUDGET=examples-embassy/budget # the size budget's pair, a package of its own
SIZE_BUDGET=${SIZE_BUDGET:-report}
case $SIZE_BUDGET in report | enforce) ;; *)
    echo "SIZE_BUDGET must be 'report' or 'enforce', not '$SIZE_BUDGET'" >&2
    exit 2
    ;;
esac
LOGS=$(mktemp -d)
RUN_LIMIT=60 # seconds per program run, build excluded; a normal run takes one or two

step() { printf '\n==> %s\n' "$*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Checks a demo log: batch lines numbered 1.., readings contiguous from #0 to the total announced by
# the start line, the stats line agreeing with the batch lines, and the final self-check line.
# With all_reasons=1 (the QEMU runs, whose emulated time is deterministic) every flush reason the
# script provokes must appear.
check_log() {
    local log=$1 all_reasons=$2
    awk -v all_reasons="$all_reasons" '
        function bad(msg) { print "output check: " msg > "/dev/stderr"; failed = 1; exit 1 }
        { line = $0; gsub(/[][#:,()]|\.\./, " ") }
        $3 == "start" { total = $4 }
        $3 == "uplink" && $4 == "batch" {
            n++; next_id += 0
            if ($5 != n) bad("batch " $5 " where batch " n " was expected: " line)
            if ($8 != next_id) bad("batch " n " starts at #" $8 ", expected #" next_id)
            if ($9 - $8 + 1 != $6 || $6 < 1 || $6 > 32) bad("batch " n " has a wrong size: " line)
            next_id = $9 + 1; reasons[$11]++
        }
        $3 == "stats" {
            if ($4 != n || $7 != reasons["Full"] + 0 || $9 != reasons["Deadline"] + 0 ||
                $11 != reasons["Flush"] + 0 || $13 != reasons["Close"] + 0)
                bad("stats disagree with the batch lines: " line)
            stats = 1
        }
        $3 == "check" && $4 == "all" { verdict = $5 " " $12 }
        /FAILED|panic/ { bad("failure line: " line) }
        END {
            if (failed) exit 1
            if (total == "" || n == 0) bad("no start line or no batch lines")
            if (next_id != total) bad("batch lines cover " next_id " of " total " readings")
            if (!stats) bad("no stats line")
            if (verdict != total " " n) bad("no line \"check: all " total " readings arrived once, in order, in " n " batches\"")
            if (all_reasons && !(reasons["Full"] && reasons["Deadline"] && reasons["Flush"] && reasons["Close"]))
                bad("expected Full, Deadline, Flush and Close batches")
            print "output check: " n " batch lines, readings #0..#" total - 1 " once each, in order"
        }' "$log"
}

# Runs a command under the time limit, showing and saving its output; fails unless its exit
# status is `expect`.
run() {
    local name=$1 expect=$2
    shift 2
    echo "\$ $*"
    local status=0
    timeout --kill-after=5 "$RUN_LIMIT" "$@" >"$LOGS/$name.log" 2>&1 || status=$?
    cat "$LOGS/$name.log"
    [ "$status" -eq "$expect" ] || fail "$name exited with status $status, expected $expect"
    echo "exit status $status, as expected"
}

step "tools"
rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi
if ! command -v qemu-system-arm >/dev/null; then
    apt-get update
    apt-get install -y --no-install-recommends qemu-system-arm
fi
qemu-system-arm --version | head -n1

step "host build (embassy std platform)"
cargo build -p examples-embassy --features host
run host 0 cargo run -q -p examples-embassy --features host
check_log "$LOGS/host.log" 0

# The firmware builds from here on use the flags size-report.sh uses (fixed source paths).
source examples-embassy/fixed-paths.sh

for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    step "firmware for $target"
    (cd "$FW" && cargo build --release --locked --target "$target" --bins)
    run "fw-$target" 0 bash -c "cd $FW && cargo run -q --release --locked --target $target --bin sensor-firmware"
    check_log "$LOGS/fw-$target.log" 1
done

for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    step "on-target tests for $target (deadline, full batch, flush, backpressure)"
    (cd "$FW" && cargo test --release --locked --target "$target" --no-run)
    run "tests-$target" 0 bash -c "cd $FW && cargo test -q --release --locked --target $target"
    grep -Eq '^[1-9][0-9]* passed, 0 failed$' "$LOGS/tests-$target.log" || fail "tests: no 'N passed, 0 failed' line"
done

step "a failed self-check fails the run (the hand-written baseline loses readings)"
run baseline 1 bash -c "cd $FW && cargo run -q --release --locked --target thumbv7em-none-eabihf --bin baseline"
grep -q "check FAILED" "$LOGS/baseline.log" || fail "baseline: no 'check FAILED' line"

step "size budget pair: prefetch-batch built without 'stats', as a firmware that only sums batches"
features=$(cd "$BUDGET" && cargo tree --locked -e features -i prefetch-batch --target thumbv6m-none-eabi)
echo "$features"
! grep -Eq 'prefetch-batch feature "(stats|default)"' <<<"$features" || fail "the budget pair builds prefetch-batch with 'stats'"

for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    step "size budget pair on $target: hand-written loop, prefetch by hand and prefetch-batch (producer in main, one-task driver) do the same job"
    (cd "$BUDGET" && cargo build --release --locked --target "$target" --bins)
    for bin in budget-hand budget-zerocopy budget-crate budget-in-task; do
        run "$bin-$target" 0 bash -c "cd $BUDGET && cargo run -q --release --locked --target $target --bin $bin"
    done
    grep -Eq '^sum [0-9]+ of [0-9]+ readings in [0-9]+ batches, [0-9]+ full$' "$LOGS/budget-hand-$target.log" ||
        fail "budget-hand: no 'sum S of R readings in B batches, F full' line"
    for bin in budget-zerocopy budget-crate budget-in-task; do
        cmp -s "$LOGS/budget-hand-$target.log" "$LOGS/$bin-$target.log" ||
            fail "$bin printed something else than budget-hand"
    done
    echo "same output"
done

step "size budget (SIZE_BUDGET=$SIZE_BUDGET)"
status=0
examples-embassy/size-report.sh --check || status=$?
if [ "$status" = 3 ]; then
    fail "prefetch-batch grew past its size ceiling (examples-embassy/budget/ceiling) or flash budget"
elif [ "$status" = 4 ] && [ "$SIZE_BUDGET" = report ]; then
    echo "within the ceiling; over budget (not enforced yet: SIZE_BUDGET=enforce fails the run)"
elif [ "$status" = 4 ]; then
    fail "prefetch-batch is over its size budget"
elif [ "$status" != 0 ]; then
    fail "size-report.sh exited with status $status"
fi

step "all embassy demo checks passed"
