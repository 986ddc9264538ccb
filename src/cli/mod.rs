//! The command line: `dpo check`, `dpo crdgen`, `dpo controller`.

pub mod report;
