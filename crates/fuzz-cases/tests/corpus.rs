//! Replays every committed fuzz input on stable: the corpus each target built (in
//! `fuzz/corpus/<target>/`) and every crash it ever found (in `fuzz/regressions/<target>/`).
//! A crash fixed once stays fixed.

use std::path::Path;

#[test]
fn every_committed_fuzz_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut ran = 0;
    for (name, target) in switchboard_fuzz_cases::TARGETS {
        let mut inputs = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap_or_default();
                let run = std::panic::catch_unwind(|| target(&data));
                assert!(run.is_ok(), "{name} fails on {}", e.path().display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "no committed inputs for the {name} target");
        ran += inputs;
    }
    println!("{ran} fuzz inputs replayed");
}
