#!/usr/bin/env bash
# Regenerates the size tables of examples-embassy/README.md, from release firmware (opt-level "s",
# fat LTO) for both targets:
#  1. the demo: sensor-ingest with prefetch-batch against the hand-written baseline loop, and the
#     size of the batcher state measured on the target;
#  2. the size budget: the fair minimal pair `budget-hand` / `budget-crate` (the package `budget/`,
#     the same job batched by hand and by prefetch-batch, prefetch-batch built without its `stats`
#     feature), what the crate adds, and its budget:
#     at most 2,048 B of flash and N*size_of(T) + 128 B of static RAM over the hand-written loop;
#     and the ceiling (budget/ceiling): what the crate adds now, so that it can only shrink.
#   examples-embassy/size-report.sh           print the tables
#   examples-embassy/size-report.sh --write   also replace the tables in the README, and lower each
#                                             ceiling the crate now stays under to what it adds
#                                             (a ceiling is raised only by editing budget/ceiling)
#   examples-embassy/size-report.sh --check   also exit 3 when a target is over its ceiling or
#                                             over an enforced budget (flash), else 4 when one is
#                                             over budget (static RAM), saying which (other
#                                             failures exit with other non-zero statuses)
# Needs the two Rust targets, qemu-system-arm and binutils' `size` (scripts/ci-embassy.sh
# installs the first two).
set -euo pipefail
cd "$(dirname "$0")"
source ./fixed-paths.sh
FW=firmware   # the demo firmware
BUDGET=budget # the size budget's pair, a package of its own
TARGETS="thumbv7em-none-eabihf thumbv6m-none-eabi"
# A package's target dir: $CARGO_TARGET_DIR if set, else its own.
target_dir() {
    (cd "$1" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
}
TARGET_DIR=$(target_dir "$FW")
BUDGET_TARGET_DIR=$(target_dir "$BUDGET")

WRITE=0 CHECK=0
for arg in "$@"; do
    case $arg in
    --write) WRITE=1 ;;
    --check) CHECK=1 ;;
    *)
        echo "usage: $0 [--write] [--check]" >&2
        exit 2
        ;;
    esac
done

# The budget. The pair batches `u32` readings, N of them a batch (budget/src/lib.rs).
BUDGET_N=$(sed -n 's/^pub const N: usize = \([0-9]*\);$/\1/p' "$BUDGET/src/lib.rs")
[ -n "$BUDGET_N" ] || { echo "size-report: no 'pub const N: usize' in $BUDGET/src/lib.rs" >&2; exit 2; }
BUDGET_FLASH=2048
BUDGET_RAM=$((BUDGET_N * 4 + 128)) # one more buffer of N u32 readings, plus 128 B of state
# The measures whose budget the crate has reached: over it, --check fails as over a ceiling. The
# others are held by their ceiling only, until they reach it too.
ENFORCED="flash"
# The ceiling: lines "target measure bytes" (measure: flash or static-RAM).
CEILING=$BUDGET/ceiling
ceiling() { # target measure
    local c
    c=$(awk -v t="$1" -v m="$2" '$1 == t && $2 == m { print $3 }' "$CEILING")
    [ -n "$c" ] || { echo "size-report: no ceiling for '$1 $2' in $CEILING" >&2; exit 2; }
    echo "$c"
}

# Prints "flash ram" in bytes for an ELF: flash is what is programmed (vectors, code, constants,
# initial values of .data), static RAM is .data + .bss + .uninit (the stack comes on top).
flash_ram() {
    size -A "$1" | awk '
        $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
        $1 == ".data" { flash += $2; ram += $2 }
        $1 == ".bss" || $1 == ".uninit" { ram += $2 }
        END { print flash, ram }'
}

board() {
    if [ "$1" = thumbv6m-none-eabi ]; then echo "microbit, Cortex-M0"; else echo "mps2-an386, Cortex-M4F"; fi
}

demo_table() {
    echo "| target (QEMU board) | firmware | flash (B) | static RAM (B) |"
    echo "|---|---|---:|---:|"
    for target in $TARGETS; do
        local elf="$TARGET_DIR/$target/release"
        read -r f1 r1 < <(flash_ram "$elf/sensor-firmware")
        read -r f0 r0 < <(flash_ram "$elf/baseline")
        echo "| $target ($(board "$target")) | with prefetch-batch | $f1 | $r1 |"
        echo "| | hand-written loop, no prefetch | $f0 | $r0 |"
        echo "| | **prefetch-batch adds** | **$((f1 - f0))** | **$((r1 - r0))** |"
    done
    echo
    echo "Batcher state for \`u32\` readings, \`N = 32\` (\`size_of\` measured on thumbv7em, in bytes):"
    echo
    echo "| item | bytes |"
    echo "|---|---:|"
    (cd "$FW" && timeout 60 cargo run -q --release --locked --target thumbv7em-none-eabihf --bin sizes) |
        sed -n 's/^size_of \(.*\): \([0-9]*\)$/| `\1` | \2 |/p; s/^buffer floor \(.*\): \([0-9]*\)$/| floor: \1 | \2 |/p'
}

# One row per target and measure: "target measure hand crate added ceiling budget verdict", the
# verdict one of within (the budget), over (the budget, within the ceiling), above (the ceiling).
budget_rows() {
    for target in $TARGETS; do
        local elf="$BUDGET_TARGET_DIR/$target/release"
        read -r fh rh < <(flash_ram "$elf/budget-hand")
        read -r fc rc < <(flash_ram "$elf/budget-crate")
        for m in "flash $fh $fc $BUDGET_FLASH" "static-RAM $rh $rc $BUDGET_RAM"; do
            set -- $m
            local added=$(($3 - $2)) verdict=within ceil
            ceil=$(ceiling "$target" "$1")
            [ "$added" -le "$4" ] || verdict=over
            [ "$added" -le "$ceil" ] || verdict=above
            echo "$target $1 $2 $3 $added $ceil $4 $verdict"
        done
    done
}

# Lowers each ceiling to what the crate adds, where that is less.
lower_ceilings() {
    local rows
    rows=$(budget_rows)
    ROWS=$rows awk '
        BEGIN { n = split(ENVIRON["ROWS"], r, "\n"); for (i = 1; i <= n; i++) { split(r[i], f, " "); added[f[1] " " f[2]] = f[5] } }
        /^#/ || NF != 3 { print; next }
        { k = $1 " " $2; if (k in added && added[k] < $3) $3 = added[k]; print }' "$CEILING" >"$CEILING.new"
    mv "$CEILING.new" "$CEILING"
}

budget_table() {
    echo "| target | measure | hand-written loop (B) | with prefetch-batch (B) | crate adds (B) | ceiling (B) | budget (B) | |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    local last=""
    while read -r target measure hand crate added ceil budget verdict; do
        local shown=$target
        [ "$target" != "$last" ] || shown=""
        last=$target
        case $verdict in
        within) verdict="within budget" ;;
        over) verdict="**over budget**" ;;
        above) verdict="**over budget and ceiling**" ;;
        esac
        echo "| $shown | ${measure/-/ } | $hand | $crate | $added | $ceil | $budget | $verdict |"
    done < <(budget_rows)
}

# Prefetching by hand beside the crate: budget-zerocopy fills the next batch while the consumer
# works on the current one (two buffers over embassy-sync's zerocopy_channel, the filling loop in
# main and a consuming task, as budget-crate), with only the full and deadline rules. What it
# adds over budget-hand is the cost of prefetching itself on this runtime; the rest of what the
# crate adds is the cost of its rules.
# budget-in-task does budget-crate's job with the crate's one-task driver (`for_each_batch_in`).
prefetch_table() {
    echo "| target | measure | hand-written loop (B) | prefetch by hand adds (B) | prefetch-batch, producer in main, adds (B) | prefetch-batch, one-task driver, adds (B) |"
    echo "|---|---|---:|---:|---:|---:|"
    for target in $TARGETS; do
        local elf="$BUDGET_TARGET_DIR/$target/release"
        read -r fh rh < <(flash_ram "$elf/budget-hand")
        read -r fz rz < <(flash_ram "$elf/budget-zerocopy")
        read -r fc rc < <(flash_ram "$elf/budget-crate")
        read -r ft rt < <(flash_ram "$elf/budget-in-task")
        echo "| $target | flash | $fh | $((fz - fh)) | $((fc - fh)) | $((ft - fh)) |"
        echo "|  | static RAM | $rh | $((rz - rh)) | $((rc - rh)) | $((rt - rh)) |"
    done
}

replace_in_readme() { # marker table
    awk -v table="$2" -v begin="<!-- $1:begin -->" -v end="<!-- $1:end -->" '
        $0 == end { print table; skip = 0 }
        !skip { print }
        $0 == begin { skip = 1 }' README.md >README.md.new
    mv README.md.new README.md
}

for target in $TARGETS; do
    for package in "$FW" "$BUDGET"; do
        (cd "$package" && cargo build -q --release --locked --target "$target" --bins)
    done
done
[ "$WRITE" = 0 ] || lower_ceilings
DEMO=$(demo_table)
BUDGET_TABLE=$(budget_table)
PREFETCH_TABLE=$(prefetch_table)
echo "$DEMO"
echo
echo "Size budget: the fair minimal pair (budget-hand, budget-crate), N = $BUDGET_N u32 readings:"
echo
echo "$BUDGET_TABLE"
echo
echo "Prefetching by hand (budget-zerocopy: two buffers, the filling loop in main, full and deadline only) beside the crate's two patterns:"
echo
echo "$PREFETCH_TABLE"
if [ "$WRITE" = 1 ]; then
    replace_in_readme size-report "$DEMO"
    replace_in_readme size-budget "$BUDGET_TABLE"
    replace_in_readme size-prefetch "$PREFETCH_TABLE"
    echo "README.md and $CEILING updated"
fi
if [ "$CHECK" = 1 ]; then
    status=0
    while read -r target measure hand crate added ceil budget verdict; do
        if [ "$verdict" = above ]; then
            echo "over its ceiling: $target ${measure/-/ }: prefetch-batch adds $added B, ceiling $ceil B ($CEILING)" >&2
            status=3
        elif [ "$verdict" = over ] && [[ " $ENFORCED " == *" $measure "* ]]; then
            echo "over its budget, which is enforced: $target ${measure/-/ }: prefetch-batch adds $added B, budget $budget B" >&2
            status=3
        elif [ "$verdict" = over ]; then
            echo "over budget: $target ${measure/-/ }: prefetch-batch adds $added B, budget $budget B" >&2
            [ "$status" = 3 ] || status=4
        fi
    done < <(budget_rows)
    [ "$status" != 0 ] || echo "size budget: within on every target"
    [ "$status" != 4 ] || echo "size ceiling: within on every target"
    exit "$status"
fi
