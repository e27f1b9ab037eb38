//! The cost of preemption: a CPU-bound program run in-process on each
//! compiler tier, with epoch interruption on (what `wasabi` uses) and off
//! ([`Preemption::Off`]). Prints one JSON object: the median wall time of
//! each of the four, in seconds.
//!
//! ```sh
//! cargo run --release -p wasabi-benches --bin preemption -- target/programs/cpu-bound.wasm 5
//! ```

use std::path::PathBuf;
use std::time::Instant;

use wasabi_core::{
    BackgroundCompile, Preemption, Runtime, RuntimeConfig, TenantIo, TenantSpec, Tiering,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let module = PathBuf::from(
        args.next()
            .ok_or("usage: preemption CPU_BOUND_WASM [RUNS]")?,
    );
    let runs: usize = args.next().map_or(Ok(5), |n| n.parse())?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut fields = Vec::new();
    for (tier, tiering) in [("winch", Tiering::Winch), ("cranelift", Tiering::Cranelift)] {
        for (mode, preemption) in [("epochs", Preemption::Epochs), ("off", Preemption::Off)] {
            // No cache: each configuration compiles its own code once,
            // outside the measurement.
            let runtime = Runtime::new(RuntimeConfig {
                tiering,
                preemption,
                background: BackgroundCompile::Off,
                ..RuntimeConfig::default()
            })?;
            let loaded = runtime.load(&module, Default::default())?;
            let spec = TenantSpec::new("cpu", &module);
            let mut samples = Vec::with_capacity(runs);
            for _ in 0..runs {
                let io = TenantIo {
                    stdout: Box::new(std::io::sink()),
                    ..TenantIo::default()
                };
                let started = Instant::now();
                let outcome = tokio.block_on(runtime.run(&loaded, &spec, io))?;
                samples.push(started.elapsed().as_secs_f64());
                if outcome.code() != 0 {
                    return Err(format!("{tier}/{mode}: exit code {}", outcome.code()).into());
                }
            }
            samples.sort_by(f64::total_cmp);
            fields.push(format!(
                "\"{tier}_{mode}\": {:.4}",
                samples[samples.len() / 2]
            ));
        }
    }
    println!("{{{}}}", fields.join(", "));
    Ok(())
}
