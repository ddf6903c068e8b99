#!/usr/bin/env bash
# Regenerates the size table of examples-embassy/README.md: flash and static RAM of the release
# firmware (opt-level "s", fat LTO) with prefetch-batch and with the hand-written baseline loop,
# for both targets, and the size of the batcher state measured on the target.
#   examples-embassy/size-report.sh           print the table
#   examples-embassy/size-report.sh --write   also replace the table in the README
# Needs the two Rust targets, qemu-system-arm and binutils' `size` (scripts/ci-embassy.sh
# installs the first two).
set -euo pipefail
cd "$(dirname "$0")"
FW=firmware
# The firmware's target dir: $CARGO_TARGET_DIR if set, else its own.
TARGET_DIR=$(cd "$FW" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

# Prints "flash ram" in bytes for an ELF: flash is what is programmed (vectors, code, constants,
# initial values of .data), static RAM is .data + .bss + .uninit (the stack comes on top).
flash_ram() {
    size -A "$1" | awk '
        $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
        $1 == ".data" { flash += $2; ram += $2 }
        $1 == ".bss" || $1 == ".uninit" { ram += $2 }
        END { print flash, ram }'
}

table() {
    echo "| target (QEMU board) | firmware | flash (B) | static RAM (B) |"
    echo "|---|---|---:|---:|"
    for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
        (cd "$FW" && cargo build -q --release --locked --target "$target" --bins)
        local board="mps2-an386, Cortex-M4F"
        [ "$target" = thumbv6m-none-eabi ] && board="microbit, Cortex-M0"
        local elf="$TARGET_DIR/$target/release"
        read -r f1 r1 < <(flash_ram "$elf/sensor-firmware")
        read -r f0 r0 < <(flash_ram "$elf/baseline")
        echo "| $target ($board) | with prefetch-batch | $f1 | $r1 |"
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

TABLE=$(table)
echo "$TABLE"
if [ "${1:-}" = --write ]; then
    awk -v table="$TABLE" '
        /<!-- size-report:end -->/ { print table; skip = 0 }
        !skip { print }
        /<!-- size-report:begin -->/ { skip = 1 }' README.md >README.md.new
    mv README.md.new README.md
    echo "README.md updated"
fi
