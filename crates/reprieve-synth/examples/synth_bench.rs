//! Times one generation: `cargo run -p reprieve-synth --example synth_bench -- OBJECTS [csv|parquet] [OUT_DIR]`.
//! With no OUT_DIR it writes into a temporary directory and removes it.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use reprieve_synth::{OutputFormat, SynthConfig, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let objects: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let format: OutputFormat = args.next().map_or(OutputFormat::Csv, |a| a.parse().unwrap());
    let out = args.next();
    let config = SynthConfig {
        objects,
        format,
        ..SynthConfig::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = out.map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    let t0 = std::time::Instant::now();
    let summary = generate(&config, &dir).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{} objects, {} events, {:.1} GB in {secs:.2}s: {:.0} objects/s, {:.0} events/s",
        summary.objects,
        summary.events,
        summary.bytes as f64 / 1e9,
        summary.objects as f64 / secs,
        summary.events as f64 / secs
    );
    for (cohort, s) in &summary.by_cohort {
        eprintln!("  {cohort:8} {:>9} objects {:>10} events", s.objects, s.events);
    }
}
