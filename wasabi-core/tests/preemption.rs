//! `RuntimeConfig::preemption`: a runtime without epoch checks runs guests,
//! on either tier, and refuses a tenant with a CPU share, which only
//! preemption can hold to it.

use wasabi_core::{
    BackgroundCompile, Outcome, Preemption, Runtime, RuntimeConfig, TenantError, TenantIo,
    TenantSpec, Tiering,
};

/// A Go js/wasm module in miniature: `run` loops `spins` times, then exits
/// (status 0: Go's exit code is read from zeroed memory).
fn guest(dir: &std::path::Path, spins: u32) -> std::path::PathBuf {
    let wat = format!(
        r#"(module
          (import "gojs" "runtime.wasmExit" (func $exit (param i32)))
          (memory (export "mem") 1)
          (func (export "run") (param i32 i32) (local i32)
            (loop $again
              (local.set 2 (i32.add (local.get 2) (i32.const 1)))
              (br_if $again (i32.lt_u (local.get 2) (i32.const {spins}))))
            (call $exit (i32.const 1024)))
          (func (export "resume"))
          (func (export "getsp") (result i32) (i32.const 1024)))"#
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("guest.wasm");
    std::fs::write(&path, wat::parse_str(&wat).unwrap()).unwrap();
    path
}

#[test]
fn without_preemption_guests_run_and_cpu_shares_are_refused() {
    let dir = std::env::temp_dir().join(format!("wasabi-preemption-{}", std::process::id()));
    let wasm = guest(&dir, 1_000_000);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for tiering in [Tiering::Winch, Tiering::Cranelift] {
        let runtime = Runtime::new(RuntimeConfig {
            tiering,
            preemption: Preemption::Off,
            background: BackgroundCompile::Off,
            key: wasabi_core::KeySource::File(dir.join("install.key")),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let module = runtime.load(&wasm, Default::default()).unwrap();
        let spec = TenantSpec::new("spin", &wasm);
        let outcome = tokio
            .block_on(runtime.run(&module, &spec, TenantIo::default()))
            .unwrap();
        assert!(matches!(outcome, Outcome::Exited(0)), "{tiering:?}");

        let mut shared = spec.clone();
        shared.limits.max_cpu = Some(0.5);
        match tokio.block_on(runtime.run(&module, &shared, TenantIo::default())) {
            Err(TenantError::Setup(why)) => assert!(why.contains("needs preemption"), "{why}"),
            other => panic!("{tiering:?}: a CPU share without preemption ran: {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
