//! Every corpus input and every input that once crashed a target, replayed:
//! each must now run without a panic.

use std::path::Path;

#[test]
fn every_saved_input_runs_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for target in wasabi_fuzz::TARGETS {
        for folder in ["corpus", "crashes"] {
            let dir = root.join(folder).join(target.name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let input = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| (target.run)(&input));
                assert!(outcome.is_ok(), "{} panics", path.display());
                ran += 1;
            }
        }
    }
    assert!(ran > 0, "no saved inputs");
}
