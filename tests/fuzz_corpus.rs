//! Replays every input of the `batching` fuzz target's corpus (`fuzz/corpus/batching/`) through
//! the same interpreter, on stable Rust and without libFuzzer, so CI checks what the fuzzer found.
//! Also runs a few hand-written inputs, so the interpreter is exercised even with no corpus.

#[path = "../fuzz/interp.rs"]
mod interp;

#[test]
fn replay_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/batching");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(e) = std::panic::catch_unwind(|| interp::run(&data)) {
            std::panic::resume_unwind(Box::new(format!(
                "corpus input {name} ({} bytes) fails: {e:?}",
                data.len()
            )));
        }
    }
    println!("replayed {} corpus inputs", files.len());
}

#[test]
fn hand_written_inputs() {
    // config: max_items 4, no weight; max_wait 2 ms; idle 1 ms, run-out finish.
    let items = [0u8, 0x05, 0x05, 0, 0, 0, 9, 11, 12, 0, 0, 0, 0, 0, 9, 5, 3, 9, 13];
    interp::run(&items);
    // the same, drain finish; with an error, a flush, a close and a dropped producer.
    let mut drain = items;
    drain[2] |= 0x80;
    interp::run(&drain);
    interp::run(&[0x13, 0x05, 0x81, 0, 3, 0, 9, 7, 9, 11, 0, 0, 9, 8, 9, 12, 13, 15, 13]);
    interp::run(&[
        0x00, 0x06, 0x02, 0, 0, 9, 5, 0xff, 9, 11, 0, 0, 0, 0, 0, 9, 5, 0x85, 9, 13, 12, 14, 13,
    ]);
}
