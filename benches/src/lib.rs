//! Criterion benches for Wasabi live in `benches/`; run them with
//! `cargo xtask bench` (which builds the guest programs first).
