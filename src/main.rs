use clap::Parser;
use dpo::cli::{Cli, Command, run_check, run_controller};
use std::process::ExitCode;

// Parsing manifests and watching a cluster allocate many small objects; mimalloc serves them
// faster than the system allocator and returns memory to the OS more readily.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => run_check(&args),
        Command::Controller(args) => run_controller(&args),
        Command::Crdgen => {
            print!("{}", dpo::api::crds_yaml());
            ExitCode::SUCCESS
        }
    }
}
