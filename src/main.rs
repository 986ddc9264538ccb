use clap::Parser;
use dpo::cli::{Cli, Command, run_check, run_controller};
use std::process::ExitCode;

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
