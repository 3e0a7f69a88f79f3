//! Replays every committed fuzz corpus file (tests/fuzz/corpus/<target>/)
//! through the function its fuzz target calls (etcdapi::fuzzing), on the
//! stable toolchain: a bug once found by `make fuzz` stays fixed.

use std::path::Path;

#[test]
fn every_corpus_file_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    let mut total = 0;
    for (target, run) in etcdapi::fuzzing::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no corpus", dir.display());
        for file in &files {
            let data = std::fs::read(file).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", file.display());
        }
        eprintln!("{target}: {} corpus files pass", files.len());
        total += files.len();
    }
    eprintln!("{total} corpus files in all");
}
