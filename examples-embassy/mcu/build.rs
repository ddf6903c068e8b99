//! Picks the board from the target and puts its memory layout where cortex-m-rt's `link.x` looks
//! for `memory.x`. Layouts live in `layout/`, not the crate root, because the linker would
//! otherwise pick up a root `memory.x` on its own, for every target. The link search path reaches
//! every package that depends on this one; each adds `-Tlink.x` to its own links (see its
//! `build.rs`).
//!
//! thumbv7em (Cortex-M4F) runs on QEMU's `mps2-an386`; thumbv6m (Cortex-M0) on `microbit`.

use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap();
    let board = if target.starts_with("thumbv6m") {
        "microbit"
    } else {
        "mps2"
    };
    println!("cargo:rustc-check-cfg=cfg(board, values(\"mps2\", \"microbit\"))");
    println!("cargo:rustc-cfg=board=\"{board}\"");

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    fs::copy(format!("layout/{board}.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=layout");
}
