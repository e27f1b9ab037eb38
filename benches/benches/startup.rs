//! Startup cost: instantiate and run `hello` from a warm module cache.
//!
//! This is the baseline later work on spawn time is measured against. The
//! guest programs come from `cargo xtask build-examples`.

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use wasabi_core::{GuestModule, Outcome, Runtime, RuntimeConfig, TenantIo, TenantSpec};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn hello_wasm() -> PathBuf {
    let path = root().join("target/programs/hello.wasm");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-examples` (or `cargo xtask bench`)",
        path.display()
    );
    path
}

fn startup(c: &mut Criterion) {
    let cache = root().join("target/bench-cache");
    // Pooled, as `wasabi serve` runs tenants.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        instance_slots: Some(16),
        // The steady state's code: a warm start loads Cranelift's.
        tiering: wasabi_core::Tiering::Cranelift,
        ..RuntimeConfig::default()
    })
    .expect("engine");
    let wasm = hello_wasm();
    // Warm the cache once, outside the measurement.
    runtime
        .load(&wasm, Default::default())
        .expect("hello.wasm loads");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio");

    c.bench_function("hello/load-from-cache", |b| {
        b.iter(|| runtime.load(&wasm, Default::default()).expect("load"));
    });

    let module = runtime.load(&wasm, Default::default()).expect("load");
    c.bench_function("hello/instantiate-and-run", |b| {
        b.iter(|| {
            let outcome = run_hello(&tokio, &runtime, &module);
            assert_eq!(outcome.code(), 0);
        });
    });

    c.bench_function("hello/load-instantiate-run", |b| {
        b.iter(|| {
            run_hello(
                &tokio,
                &runtime,
                &runtime.load(&wasm, Default::default()).expect("load"),
            )
        });
    });
}

/// Instantiates `module` (from its `InstancePre`, in a pooled slot) and runs
/// it to its exit, output discarded.
fn run_hello(tokio: &tokio::runtime::Runtime, runtime: &Runtime, module: &GuestModule) -> Outcome {
    let spec = TenantSpec::new("hello", "hello.wasm");
    let io = TenantIo {
        stdout: Box::new(std::io::sink()),
        ..TenantIo::default()
    };
    tokio
        .block_on(runtime.run(module, &spec, io))
        .expect("hello runs")
}

criterion_group!(benches, startup);
criterion_main!(benches);
