// The command is linked as rustc links it by default, a position-independent executable,
// so that ASLR places its code and data at a random address at every start: it runs as
// root (sync-down, transfer-image reading the engine's storage) and serves HTTP
// (serve-hooks). Linked position-dependent (`-no-pie`, as until issue 11) it started
// ~0.5 ms sooner: a PIE of this size carries ~36 600 relative relocations (880 KB) that
// the loader applies at every start. Measured side by side on one build, relinked three
// ways (BENCHMARKS.md, "Start-up", 2026-11-30): PIE costs 0.5-0.7 ms over `-no-pie`, and
// `-z pack-relative-relocs` (DT_RELR: the table shrinks to 10 KB) gains nothing on top
// (the same relocations are still applied, the same pages written) while needing glibc
// 2.36 to run, so it is not used. The start-up target is met with PIE by the daily binary
// (src/cli/daily.rs), which leaves the relocation-heavy AWS SDK out of build-image and
// run-image (BENCHMARKS.md, "Start-up", 2026-12-01).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
