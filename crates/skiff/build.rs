//! Links the skiff binary as a fixed-address (non-PIE) executable, as Go links Kubernetes'
//! binaries. Every container's shim is this binary exec'd again: a position-independent one
//! would make each of them apply ~100k relocations at start and keep a private copy of every
//! page holding a pointer (about 2.4 MB a shim); linked at a fixed address those pages stay
//! shared with the page cache and the shim starts without the dynamic loader's relocation pass.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
