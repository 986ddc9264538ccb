//! The command line: `dpo check`, `dpo crdgen`, `dpo controller`.

pub mod output;
pub mod report;
