//! The ProtectedSecret controller running in this process against a real cluster, with moto
//! as AWS, its metrics readable as Prometheus scrapes them.

use super::cluster::PATIENCE;
use dpo::aws::AwsFacts;
use dpo::controller::protected_secret;
use dpo::controller::{Context, ControllerConfig};
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct InProcess {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    registry: Registry,
}

impl InProcess {
    pub fn start(client: &kube::Client, aws: AwsFacts, config: ControllerConfig) -> Self {
        let mut registry = Registry::default();
        let ctx = Context::new(client.clone(), aws, config, &mut registry);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(protected_secret::run(ctx, async move {
            let _ = stopped.await;
        }));
        InProcess { stop, task, registry }
    }

    /// The metrics in the text exposition format.
    pub fn metrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("metrics encode");
        text
    }

    /// The value of the series whose line starts with `series` (`name{labels}`).
    pub fn sample(&self, series: &str) -> Option<f64> {
        let text = self.metrics();
        let line = text.lines().find(|line| line.starts_with(series))?;
        line[series.len()..].trim().parse().ok()
    }

    /// Stops the controller and waits until it has returned, so it writes nothing more.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .unwrap_or_else(|_| panic!("controller still running {PATIENCE:?} after its shutdown"))
            .expect("controller task");
    }
}
