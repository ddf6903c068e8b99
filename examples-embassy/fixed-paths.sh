# Sourced by every script that builds the firmware (size-report.sh, size-breakdown.sh,
# ../scripts/ci-embassy.sh). A firmware keeps the source paths of its panic locations, so its size
# would depend on where the repository and the cargo home are: both are mapped to fixed names, and
# the sizes reproduce in any checkout. Each script sets the same flags, so one build serves all.
fixed_paths_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUSTFLAGS="--remap-path-prefix=$fixed_paths_repo=/prefetch-batch"
export RUSTFLAGS+=" --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
