//! The hot paths the comparison figures point at: the Go reference table
//! (every `syscall/js` value crosses it), property lookup on the JS heap
//! (`valueGet`), bounds-checked guest memory copies (every socket read and
//! write), and instantiating a tenant from its linked module.

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use wasabi_core::wasabi_gojs::GoHostBuilder;
use wasabi_core::wasabi_gojs::guest_memory::GuestMemory;
use wasabi_core::{Runtime, RuntimeConfig, TenantLimits};

fn hot_paths(c: &mut Criterion) {
    c.bench_function("guest memory: 64 KiB copy in, bounds-checked", |b| {
        let mut memory = vec![0u8; 1 << 20];
        let data = vec![7u8; 64 << 10];
        b.iter(|| {
            let mut mem = GuestMemory::new(&mut memory);
            mem.write(4096, std::hint::black_box(&data))
                .expect("in bounds");
        });
    });
    c.bench_function("guest memory: 64 KiB slice out, bounds-checked", |b| {
        let mut memory = vec![0u8; 1 << 20];
        b.iter(|| {
            let mem = GuestMemory::new(&mut memory);
            std::hint::black_box(mem.slice(4096, 64 << 10).expect("in bounds").len())
        });
    });
    c.bench_function("JS world: build a fresh realm", |b| {
        b.iter(|| GoHostBuilder::new().build().expect("realm"));
    });

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let hello: PathBuf = root.join("target/programs/hello.wasm");
    if hello.is_file() {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(root.join("target/bench-cache")),
            instance_slots: Some(16),
        })
        .expect("engine");
        let module = runtime.load(&hello).expect("hello loads");
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        c.bench_function("instantiate from InstancePre (pooled) and run hello", |b| {
            b.iter(|| {
                let host = GoHostBuilder::new()
                    .arg("hello")
                    .stdout(Box::new(std::io::sink()));
                tokio
                    .block_on(runtime.run(&module, host, TenantLimits::default()))
                    .expect("hello runs")
            });
        });
    }
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
