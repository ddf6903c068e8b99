//! The memory layout comes from the `mcu` crate (its `build.rs` puts `memory.x` on the link search
//! path); this package's programs link with cortex-m-rt's `link.x`.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-tests=-Tlink.x");
}
