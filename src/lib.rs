//! Data Protection Operator: data-protection policy for Amazon EKS.
//!
//! The seams: [`api`] (CRD types), [`policy`] (pure evaluation), [`aws`] (facts behind small
//! traits, one cache), [`controller`] (one module per kind, and the runtime that runs them),
//! [`server`] (`/metrics`, `/healthz`, `/readyz`), [`status`], [`metrics`] and [`telemetry`], and
//! [`cli`] (`dpo check`, `dpo controller`).

pub mod api;
pub mod aws;
pub mod cli;
pub mod controller;
pub mod glob;
pub mod metrics;
pub mod policy;
pub mod server;
pub mod status;
pub mod telemetry;
