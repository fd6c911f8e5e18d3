//! `reprieve`: decides which stored images can safely go. This binary only parses flags, sets up logging and
//! calls into the library crates; every error ends as one readable line and a non-zero exit code.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad usage.

mod bundled;
mod commands;
mod feedback;
mod feedback_files;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: decoding requests, building verdicts and polars' buffers allocate a lot,
/// and glibc's malloc/free took about a quarter of the server's CPU (perf, session 3).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    commands::init_tracing(cli.json_logs);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let message = format!("{e:#}").replace('\n', " ");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("reprieve: error: {message}");
            }
            ExitCode::from(1)
        }
    }
}
