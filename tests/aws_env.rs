//! `AwsFacts::from_env` honours `AWS_ENDPOINT_URL` through aws-config's standard loading.
//! Alone in its binary because it sets process environment variables.

mod support;

use dpo::aws::{AwsFacts, SecretsApi, Target};
use prometheus_client::registry::Registry;
use support::moto::{self, Seed};

#[tokio::test]
async fn the_endpoint_override_comes_from_the_environment() {
    let endpoint = moto::endpoint();
    // SAFETY: the only test of this binary; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", endpoint);
        std::env::set_var("AWS_REGION", moto::REGION);
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    let seed = Seed::new().await;
    let name = moto::unique("env");
    seed.secret(&name, "v", None).await;

    let mut registry = Registry::with_prefix("dpo");
    let facts = AwsFacts::from_env(moto::test_settings(), &mut registry).await.unwrap();
    assert_eq!(facts.default_region(), moto::REGION);
    assert_eq!(facts.secret(&Target::default(), &name).await.unwrap().name, name);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            r#"dpo_aws_requests_total{service="secretsmanager",operation="DescribeSecret",outcome="success"} 1"#
        ),
        "{text}"
    );
}
