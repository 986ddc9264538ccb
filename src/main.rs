use clap::Parser;
use dpo::cli::{Cli, Command, run_check, run_controller};
use std::process::ExitCode;

/// mimalloc: `dpo check` makes and frees millions of small blocks across threads, where glibc's
/// allocator spent a quarter of the run, and kept what was freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc 3 (`mi_option_e` in its `mimalloc.h`), which the bindings
/// leave unnamed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once rather than after a second: `dpo check` frees
/// each scope's documents as it goes and peaks a third lower, for a few percent of its time. A
/// `MIMALLOC_PURGE_DELAY` in the environment still decides.
fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's options may be set from any thread at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> ExitCode {
    return_freed_memory_at_once();
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_numbers_are_those_of_the_mimalloc_built() {
        // SAFETY: reads a constant.
        let version = unsafe { libmimalloc_sys::mi_version() };
        // `MI_MALLOC_VERSION`: major, two digits of minor, two of patch.
        assert_eq!(version / 10_000, 3, "mi_option_e is numbered for mimalloc 3, built: {version}");
    }
}
