//! The controllers: one module per kind, each a reconcile function of (object, context).

pub mod policy;

use crate::aws::AwsFacts;
use crate::metrics::{PolicyMetrics, ReconcileMetrics};
use crate::policy::AlbDefaults;
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
    /// How the AWS Load Balancer Controller of the cluster is configured (TlsIngressPolicy).
    pub alb_defaults: AlbDefaults,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            default_refresh: Duration::from_secs(3600),
            reevaluation_period: Duration::from_secs(600),
            concurrency: 4,
            alb_defaults: AlbDefaults::default(),
        }
    }
}

/// What every reconcile gets besides its object.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub aws: AwsFacts,
    pub reconciles: ReconcileMetrics,
    pub policies: PolicyMetrics,
    pub config: Arc<ControllerConfig>,
}
