//! The memory layout comes from the `mcu` crate (its `build.rs` puts `memory.x` on the link search
//! path); the two programs link with cortex-m-rt's `link.x`.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
