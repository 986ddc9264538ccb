//! Data Protection Operator: data-protection policy for Amazon EKS.
//!
//! The seams: [`api`] (CRD types), [`policy`] (pure evaluation), [`aws`] (facts), `controller`
//! (one module per kind), [`cli`] (`dpo check`).

pub mod api;
pub mod aws;
pub mod cli;
pub mod policy;
