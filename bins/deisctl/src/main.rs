//! `deisctl`, the operator's command line; see the `deisctl` library.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = deisctl::cli::Args::parse();
    match deisctl::cli::run(args).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("deisctl: {error}");
            ExitCode::FAILURE
        }
    }
}
