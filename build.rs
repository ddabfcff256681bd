// Link the command as a position-dependent executable: a PIE of this size (the AWS SDK
// is in it) carries ~37 000 relative relocations that the loader applies at every start,
// a measurable share of a command that otherwise only reads a cfg and starts docker
// (BENCHMARKS.md, start-up). The code is still compiled position-independent; only the
// final link fixes the addresses.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
