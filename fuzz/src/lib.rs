//! Fuzz targets for the surfaces where Wasabi reads hostile input, and a
//! small mutation fuzzer that runs them on the stable toolchain (no
//! nightly, no sanitizer runtime: `cargo xtask fuzz`).
//!
//! Each [`Target`] takes arbitrary bytes and must return normally whatever
//! they are: an error for the guest or the user is fine, a panic (or an
//! abort) is a bug. The fuzzer mutates the target's corpus
//! (`fuzz/corpus/<target>/`), runs every input under `catch_unwind`, and
//! keeps an input that panics in `fuzz/crashes/<target>/`; each one found
//! becomes a regression test (`fuzz/tests/regressions.rs` replays them all).

#![deny(missing_docs)]

pub mod mutate;
pub mod targets;

/// One fuzz target: a name, a dictionary of tokens worth splicing in, and
/// the function that must not panic.
pub struct Target {
    /// The name used on the command line and for its corpus folder.
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    /// Tokens the mutator inserts (keywords, separators, magic numbers).
    pub dictionary: &'static [&'static [u8]],
    /// Runs one input.
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    targets::gojs_imports::TARGET,
    targets::manifest::TARGET,
    targets::parsers::TARGET,
    targets::guest_path::TARGET,
    targets::module::TARGET,
    targets::wasi_imports::TARGET,
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
