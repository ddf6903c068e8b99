#!/usr/bin/env bash
# Where prefetch-batch's bytes go in the size budget's pair (the package `budget/`): for
# `budget-crate` against `budget-hand`, release (opt-level "s", fat LTO), on thumbv7em-none-eabihf
# and thumbv6m-none-eabi. Re-run after each change to the core:
#   examples-embassy/size-breakdown.sh [target...]     (default: both targets)
# Prints, per target:
#   - flash and static RAM of both firmwares;
#   - the 25 largest symbols of budget-crate (size, section, name, and for code the source file
#     most of it was written in, outside core and compiler-builtins: this names what an embassy
#     task's `TaskStorage::poll` has inlined);
#   - bytes per category: 64/128-bit multiply/divide helpers, 32-bit divide helpers, memcpy/memset,
#     core::fmt, outlined prefetch_batch symbols, with their call sites; critical-section entries
#     (`cpsid i`, one per inlined acquire) and calls to outlined `RawMutex::lock` functions;
#   - where the `static` slot lands: .bss, or .data (its initial value then also takes flash);
#   - code bytes by source, from the DWARF line table (inlined code counts where it was written:
#     approximate, but it follows code into the tasks' polls), crate against hand;
#   - code bytes by prefetch-batch function, each instruction counted in the innermost
#     prefetch-batch function it was inlined from (DWARF inlining chains, `addr2line -i`): which
#     function's code it is, wherever it was inlined.
# Needs the two Rust targets, `rustup component add llvm-tools` (for llvm-nm, llvm-objdump) and
# binutils (`size`, `addr2line`).
set -euo pipefail
cd "$(dirname "$0")"
source ./fixed-paths.sh
FW=budget
REPO=$(cd .. && pwd)
TARGETS=${*:-thumbv7em-none-eabihf thumbv6m-none-eabi}
TARGET_DIR=$(cd "$FW" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TOOLS="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
NM=$TOOLS/llvm-nm
OBJDUMP=$TOOLS/llvm-objdump
[ -x "$NM" ] && [ -x "$OBJDUMP" ] || {
    echo "size-breakdown: needs llvm-nm and llvm-objdump: rustup component add llvm-tools" >&2
    exit 2
}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

HELPERS_WIDE='__aeabi_uldivmod|__aeabi_ldivmod|__aeabi_lmul|__aeabi_llsl|__aeabi_llsr|__aeabi_lasr|__udivmoddi4|__udivdi3|__umoddi3|__divdi3|__moddi3|__muldi3|__udivti3|__umodti3|__udivmodti4|__divti3|__modti3|__multi3|__muloti4|u64_div_rem|u128_div_rem|u64_by_u64_div_rem|u128_by_u64_div_rem'
HELPERS_32='u32_div_rem|__aeabi_uidiv|__aeabi_uidivmod|__aeabi_idiv|__aeabi_idivmod|__udivsi3|__umodsi3|__divsi3|__modsi3|__udivmodsi4'
MEM='memcpy|memset|memmove|memclr|__aeabi_mem'
FMT='core::fmt|::fmt::|<.* as core::fmt::'

# Symbols of an ELF: "size type address name", demangled without the hash, largest first.
symbols() {
    "$NM" -S --size-sort -C "$1" | awk '
        function hex(s,   i, n) { n = 0; s = tolower(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }
        function rust(n) { gsub(/\$LT\$/, "<", n); gsub(/\$GT\$/, ">", n); gsub(/\$u20\$/, " ", n); gsub(/\$C\$/, ",", n)
            gsub(/\$RF\$/, "\\&", n); gsub(/\$BP\$/, "*", n); gsub(/\$u27\$/, "'"'"'", n); gsub(/\$u5b\$/, "[", n); gsub(/\$u5d\$/, "]", n)
            gsub(/\$u7b\$/, "{", n); gsub(/\$u7d\$/, "}", n); gsub(/\.\./, "::", n); sub(/^_</, "<", n); sub(/::h[0-9a-f]+$/, "", n); return n }
        NF >= 4 { name = $4; for (i = 5; i <= NF; i++) name = name " " $i
                  print hex($2), $3, hex($1), rust(name) }' | sort -k1,1nr
}

# The disassembly with source lines, as "function-address<TAB>function<TAB>source<TAB>bytes<TAB>
# instruction" per instruction (bytes up to the next instruction or function).
lines() {
    "$OBJDUMP" -d -l -C --no-show-raw-insn "$1" | awk -v repo="$REPO/" '
        function hex(s,   i, n) { n = 0; s = tolower(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }
        function rust(n) { gsub(/\$LT\$/, "<", n); gsub(/\$GT\$/, ">", n); gsub(/\$u20\$/, " ", n); gsub(/\$C\$/, ",", n)
            gsub(/\$RF\$/, "\\&", n); gsub(/\$BP\$/, "*", n); gsub(/\$u27\$/, "'"'"'", n); gsub(/\$u5b\$/, "[", n); gsub(/\$u5d\$/, "]", n)
            gsub(/\$u7b\$/, "{", n); gsub(/\$u7d\$/, "}", n); gsub(/\.\./, "::", n); sub(/^_</, "<", n); sub(/::h[0-9a-f]+$/, "", n); return n }
        function origin(path) {
            if (path ~ /\/library\/compiler-builtins\//) return "compiler-builtins"
            if (path ~ /\/library\/core\/src\//) { sub(/.*\/library\/core\/src\//, "core/", path); return path }
            if (path ~ /\/registry\/src\/[^\/]*\//) { sub(/.*\/registry\/src\/[^\/]*\//, "", path); sub(/\/.*/, "", path); return path }
            if (index(path, repo "src/") == 1) return "prefetch-batch/" substr(path, length(repo) + 1)
            if (index(path, repo) == 1) return substr(path, length(repo) + 1)
            return path
        }
        function emit(addr) { if (prev != "") printf "%d\t%s\t%s\t%d\t%s\n", pfa, pfn, psrc, addr - prev, pins }
        /^[0-9a-f]+ <.*>:$/ {
            addr = hex($1); emit(addr); prev = ""; fa = addr
            fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); fn = rust(fn)
            src = "(no line info)"; next
        }
        /^; \/.*:[0-9]+$/ { src = $2; sub(/:[0-9]+$/, "", src); src = origin(src); next }
        /^ +[0-9a-f]+:/ {
            a = $1; sub(/:$/, "", a); addr = hex(a); emit(addr)
            prev = addr; pfa = fa; pfn = fn; psrc = src
            ins = $0; sub(/^ +[0-9a-f]+:[ \t]*/, "", ins); gsub(/\t/, " ", ins); sub(/ *@.*/, "", ins)
            if (ins ~ /</) { t = ins; sub(/^[^<]*</, "", t); sub(/>[^>]*$/, "", t); ins = substr(ins, 1, index(ins, "<")) rust(t) ">" }
            pins = ins
        }'
}

flash_ram() {
    "$NM" -S "$1" >/dev/null # fail early on a missing ELF
    size -A "$1" | awk '
        $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
        $1 == ".data" { flash += $2; ram += $2 }
        $1 == ".bss" || $1 == ".uninit" { ram += $2 }
        END { print flash, ram }'
}

# Bytes and count of the symbols whose name matches a pattern: "bytes count".
category() { # symbols-file pattern
    awk -v re="$2" '$0 ~ re && $1 > 0 { n++; b += $1 } END { print b + 0, n + 0 }' "$1"
}

# Call sites (bl/b/b.w to a symbol matching the pattern) in the disassembly: "calls".
calls() { # lines-file pattern
    awk -F'\t' -v re="$2" '$5 ~ /^(bl|b|b\.w|blx) / && $5 ~ ("<(" re ")") { n++ } END { print n + 0 }' "$1"
}

# Who calls symbols matching a pattern: "count  callee <- caller @address", most first.
callers() { # lines-file pattern
    awk -F'\t' -v re="$2" '$5 ~ /^(bl|b|b\.w|blx) / && $5 ~ ("<(" re ")") {
            h = $5; sub(/^[^<]*</, "", h); sub(/(\+0x[0-9a-f]+)?>$/, "", h); n[h " <- " $2 " @" sprintf("%x", $1)]++ }
        END { for (k in n) printf "    %3d  %s\n", n[k], k }' "$1" | sort -rn | head -n 8
}

# Code bytes per innermost prefetch-batch function, "bytes<TAB>function", most first: each
# instruction's inlining chain from addr2line, generics and hashes left out of the names.
by_crate_function() { # elf
    "$OBJDUMP" -d --no-show-raw-insn "$1" | awk '/^ +[0-9a-f]+:/ { a = $1; sub(/:$/, "", a); print "0x" a }' |
        addr2line -e "$1" -a -i -f -C | awk '
        function hex(s,   i, n) { n = 0; s = tolower(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }
        function short(n) { while (gsub(/<[^<>]*>/, "", n)) {} sub(/::h[0-9a-f]+$/, "", n); return n }
        function done(next_addr) { if (have) { b[pick == "" ? "(not prefetch-batch)" : pick] += next_addr - addr } }
        /^0x[0-9a-f]+$/ { a = hex(substr($0, 3)); if (have && a - addr < 64) done(a); addr = a; have = 1; pick = ""; line = 0; next }
        { line++ }
        line % 2 == 1 && pick == "" && /prefetch_batch/ { pick = short($0) }
        END { for (k in b) printf "%d\t%s\n", b[k], k }' | sort -t$'\t' -k1,1nr
}

section_name() {
    case $1 in
    d | D) echo ".data (initial value also in flash)" ;;
    b | B) echo ".bss (zero-initialised, no flash)" ;;
    r | R) echo ".rodata" ;;
    *) echo "type $1" ;;
    esac
}

for target in $TARGETS; do
    (cd "$FW" && cargo build -q --release --locked --target "$target" --bin budget-hand --bin budget-crate)
    elf=$TARGET_DIR/$target/release
    for bin in budget-hand budget-crate; do
        symbols "$elf/$bin" >"$WORK/$bin.sym"
        lines "$elf/$bin" >"$WORK/$bin.lines"
    done
    read -r fh rh < <(flash_ram "$elf/budget-hand")
    read -r fc rc < <(flash_ram "$elf/budget-crate")

    echo "=== $target: budget-crate against budget-hand ==="
    printf '%-12s %10s %10s %10s\n' "" budget-hand budget-crate "crate adds"
    printf '%-12s %10d %10d %+10d\n' "flash" "$fh" "$fc" $((fc - fh)) "static RAM" "$rh" "$rc" $((rc - rh))

    echo
    echo "--- 25 largest symbols of budget-crate (bytes, section; code: mostly written in) ---"
    # The main non-library source of each function, from the line table.
    awk -F'\t' '$3 !~ /^(core\/|compiler-builtins|cortex-m-0|\(no line info\))/ { b[$1 "\t" $3] += $4 }
        END { for (k in b) print b[k] "\t" k }' "$WORK/budget-crate.lines" | sort -t$'\t' -k1,1nr |
        awk -F'\t' '++seen[$2] <= 2 { s[$2] = s[$2] (s[$2] == "" ? "" : ", ") $3 " " $1 } END { for (f in s) print f "\t" s[f] }' \
        >"$WORK/main-src"
    head -n 25 "$WORK/budget-crate.sym" | while read -r size type addr name; do
        src=""
        case $type in t | T) src=$(awk -F'\t' -v a="$addr" '$1 == a { print "  [" $2 "]"; exit }' "$WORK/main-src") ;; esac
        printf '%6d %s  %s @%x%s\n' "$size" "$type" "$name" "$addr" "$src"
    done

    echo
    echo "--- categories: outlined bytes (symbols) and call sites, budget-hand -> budget-crate ---"
    for cat in "64/128-bit mul/div helpers|$HELPERS_WIDE" "32-bit divide helpers|$HELPERS_32" \
        "memcpy/memset/memclr|$MEM" "core::fmt|$FMT" "prefetch_batch (outlined)|prefetch_batch"; do
        label=${cat%%|*} re=${cat#*|}
        read -r bh nh < <(category "$WORK/budget-hand.sym" "$re")
        read -r bc nc < <(category "$WORK/budget-crate.sym" "$re")
        printf '%-28s %6d B (%2d) -> %6d B (%2d)  %+6d B   calls %3d -> %3d\n' "$label" "$bh" "$nh" "$bc" "$nc" \
            $((bc - bh)) "$(calls "$WORK/budget-hand.lines" "$re")" "$(calls "$WORK/budget-crate.lines" "$re")"
    done
    for bin in budget-hand budget-crate; do
        awk -F'\t' '$5 ~ /^cpsid/ { n++; f[$2 " @" sprintf("%x", $1)]++ } END { print n + 0 > "/dev/stderr"; for (k in f) print f[k] "\t" k }' \
            "$WORK/$bin.lines" 2>"$WORK/$bin.cs" | sort -rn >"$WORK/$bin.csf"
    done
    lock_re='<embassy_sync::blocking_mutex::raw::[A-Za-z]*RawMutex as embassy_sync::blocking_mutex::raw::RawMutex>::lock'
    printf '%-28s %6d -> %6d inlined acquires (cpsid i); calls to outlined RawMutex::lock<F> %d -> %d\n' \
        "critical sections" "$(cat "$WORK/budget-hand.cs")" "$(cat "$WORK/budget-crate.cs")" \
        "$(calls "$WORK/budget-hand.lines" "$lock_re")" "$(calls "$WORK/budget-crate.lines" "$lock_re")"
    echo "  acquires per function in budget-crate:"
    head -n 8 "$WORK/budget-crate.csf" | awk -F'\t' '{ printf "    %3d  %s\n", $1, $2 }'
    for bin in budget-hand budget-crate; do
        awk -F'\t' -v lock="$lock_re" '$5 ~ /^cpsid/ && ("<" $2) !~ lock { n++ }
            $5 ~ /^(bl|b|b\.w|blx) / && $5 ~ ("<(" lock ")") { n++ } END { print n + 0 }' "$WORK/$bin.lines"
    done | paste -sd' ' | while read -r h c; do
        printf '%-28s %6d -> %6d (inlined acquires outside RawMutex::lock<F>, plus calls to it)\n' "  acquire sites" "$h" "$c"
    done
    echo "  wide helpers called from (budget-crate):"
    callers "$WORK/budget-crate.lines" "$HELPERS_WIDE"
    echo "  memcpy/memset called from (budget-crate):"
    callers "$WORK/budget-crate.lines" "$MEM"

    echo
    echo "--- statics of budget-crate over 64 B (section) ---"
    awk '$2 ~ /^[dDbB]$/ && $1 > 64' "$WORK/budget-crate.sym" | while read -r size type _ name; do
        printf '%6d  %-40s %s\n' "$size" "$name" "$(section_name "$type")"
    done

    echo
    echo "--- code bytes by source (line table; inlined code counted where written), hand -> crate ---"
    for bin in budget-hand budget-crate; do
        awk -F'\t' '{ o = $3; if (o !~ /^prefetch-batch\//) sub(/\/.*/, "", o); b[o] += $4 }
            END { for (k in b) print k "\t" b[k] }' "$WORK/$bin.lines" | sort >"$WORK/$bin.src"
    done
    join -t$'\t' -a1 -a2 -e0 -o 0,1.2,2.2 "$WORK/budget-hand.src" "$WORK/budget-crate.src" |
        awk -F'\t' '{ printf "%6d -> %6d  %+6d  %s\n", $2, $3, $3 - $2, $1 }' | sort -k3,3nr | awk '$3 != 0' | head -n 25
    echo "  core, by file (crate's additions):"
    for bin in budget-hand budget-crate; do
        awk -F'\t' '$3 ~ /^core\// { b[$3] += $4 } END { for (k in b) print k "\t" b[k] }' "$WORK/$bin.lines" |
            sort >"$WORK/$bin.core"
    done
    join -t$'\t' -a1 -a2 -e0 -o 0,1.2,2.2 "$WORK/budget-hand.core" "$WORK/budget-crate.core" |
        awk -F'\t' '$3 - $2 > 0 { printf "    %6d -> %6d  %+6d  %s\n", $2, $3, $3 - $2, $1 }' | sort -k3,3nr | head -n 8

    echo
    echo "--- budget-crate's code bytes by prefetch-batch function (inlined code counted in the innermost one) ---"
    by_crate_function "$elf/budget-crate" | awk -F'\t' '$2 != "(not prefetch-batch)" { t += $1; if (++n <= 30) printf "%6d  %s\n", $1, $2 }
        END { printf "%6d  in all\n", t }'
    echo
done
