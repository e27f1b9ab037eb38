//! Measurements for `cargo xtask bench` that need the library rather than
//! the `wasabi` binary (see `src/bin/spawn.rs`), and criterion benches of the
//! hot paths (`benches/`).
