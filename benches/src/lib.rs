//! Criterion benchmarks live in `benches/`; see `cargo bench -p meter-benches`.
