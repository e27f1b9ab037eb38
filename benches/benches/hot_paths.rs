//! Hot paths the comparison figures point at: bounds-checked guest memory
//! copies (every socket read and write) and building a fresh JS world (part
//! of every spawn). Instantiating a tenant from its linked module is in
//! `startup.rs`.

use criterion::{Criterion, criterion_group, criterion_main};
use wasabi_core::wasabi_gojs::GoHostBuilder;
use wasabi_core::wasabi_gojs::guest_memory::GuestMemory;

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
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
