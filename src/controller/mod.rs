//! The controllers: one module per kind, each a reconcile function of (object, context), and
//! the runtime that runs them ([`runtime`], [`leader`]).

pub mod access;
pub mod leader;
pub mod protected_secret;
pub mod runtime;

use crate::aws::AwsFacts;
use crate::metrics::ReconcileMetrics;
use crate::server::ReadyHandle;
use access::AccessRules;
use std::sync::Arc;
use std::time::Duration;

/// Settings shared by the controllers, validated at start.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Refresh interval for ProtectedSecrets that do not set one.
    pub default_refresh: Duration,
    /// Period of the full re-evaluation of cluster policies (facts change in AWS).
    pub reevaluation_period: Duration,
    /// Reconciles in flight at once, per controller.
    pub concurrency: u16,
    /// Which secret ids each namespace may reference.
    pub secret_access: AccessRules,
    /// How long AWS reads of concurrent reconciles are collected into one batch call.
    pub batch_window: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            default_refresh: Duration::from_secs(3600),
            reevaluation_period: Duration::from_secs(600),
            concurrency: 4,
            secret_access: AccessRules::default(),
            batch_window: Duration::from_millis(20),
        }
    }
}

/// What every reconcile gets besides its object.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub aws: AwsFacts,
    pub reconciles: ReconcileMetrics,
    pub config: Arc<ControllerConfig>,
    /// Set once this controller's caches have synced; `/readyz` fails until every controller's is.
    pub ready: ReadyHandle,
    /// State the ProtectedSecret controller keeps between reconciles.
    pub protected_secrets: Arc<protected_secret::Shared>,
}
