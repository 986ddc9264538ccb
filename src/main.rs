use clap::Parser;
use dpo::cli::{Cli, Command, run_check};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => run_check(&args).await,
        Command::Crdgen => {
            print!("{}", dpo::api::crds_yaml());
            ExitCode::SUCCESS
        }
    }
}
