//! Benchmarks only: see `benches/evaluate.rs`.
