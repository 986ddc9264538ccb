//! One `moto_server` per test binary, real SDK clients pointed at it, and seeding helpers.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use dpo::aws::{AwsFacts, AwsMetrics, AwsSettings, RetryPolicy};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

pub const REGION: &str = "us-east-1";

struct Moto {
    endpoint: String,
    // Holds the write end of the watchdog's stdin: when this process exits, however it exits,
    // the pipe closes and the watchdog kills moto.
    _watchdog: Child,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The endpoint of this binary's moto server, started on first use.
pub fn endpoint() -> &'static str {
    &MOTO.get_or_init(start).endpoint
}

fn start() -> Moto {
    // moto picks its own port and says which: no window in which another listener of this
    // process (a fault proxy, a fake apiserver) can take a port probed free.
    let script = "moto_server -p 0 -H 127.0.0.1 2>&1 >/dev/null & pid=$!; trap 'kill $pid' EXIT; read _";
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start moto_server through sh");
    let output = watchdog.stdout.take().expect("moto output");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keeps reading after the port is known, so moto never blocks on a full pipe.
        let mut sent = false;
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if !sent && let Some(port) = running_on(&line) {
                sent = port_tx.send(port).is_ok();
            }
        }
    });
    let port = port_rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
        panic!("moto_server did not start within 120 s; install it with: pip install 'moto[server]>=5.2,<6'")
    });
    Moto { endpoint: format!("http://127.0.0.1:{port}"), _watchdog: watchdog }
}

/// The port in moto's ` * Running on http://127.0.0.1:PORT` line.
fn running_on(line: &str) -> Option<u16> {
    line.split_once("Running on http://127.0.0.1:")?.1.trim().parse().ok()
}

/// A name no other test uses, so tests can share one moto.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("{prefix}-{}-{nanos:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// SDK configuration for `endpoint` with static test credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    sdk_config_in(endpoint, REGION).await
}

/// As [`sdk_config`], in `region`.
pub async fn sdk_config_in(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// Time within which any one AWS request must be answered in tests: long enough that a loaded
/// machine never reaches it, so reaching it means a hang.
pub const HANG: Duration = Duration::from_secs(60);

/// Settings for tests: quick retries so that fault tests stay fast, and an attempt timeout
/// that only a hang reaches.
pub fn test_settings() -> AwsSettings {
    AwsSettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        },
        attempt_timeout: HANG,
        ..AwsSettings::default()
    }
}

/// An [`AwsFacts`] handle talking to `endpoint`.
pub async fn facts_at(endpoint: &str, settings: AwsSettings) -> AwsFacts {
    AwsFacts::new(sdk_config(endpoint).await, settings, AwsMetrics::default()).expect("facts handle")
}

/// An [`AwsFacts`] handle talking to moto directly.
pub async fn facts(settings: AwsSettings) -> AwsFacts {
    facts_at(endpoint(), settings).await
}

/// Seeds moto through the real SDK.
pub struct Seed {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub kms: aws_sdk_kms::Client,
    pub acm: aws_sdk_acm::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
}

pub struct Key {
    pub id: String,
    pub arn: String,
}

impl Seed {
    pub async fn new() -> Self {
        Self::in_region(REGION).await
    }

    /// Seeds moto's `region`.
    pub async fn in_region(region: &str) -> Self {
        let config = sdk_config_in(endpoint(), region).await;
        Self {
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            eks: aws_sdk_eks::Client::new(&config),
        }
    }

    pub async fn key(&self) -> Key {
        let meta = self.kms.create_key().send().await.expect("CreateKey").key_metadata.expect("key metadata");
        Key { arn: meta.arn.clone().expect("key arn"), id: meta.key_id }
    }

    /// A secret named `<namespace>/db-…` holding `value`, under a new customer-managed key with
    /// rotation on: what every policy default passes. Returns its name.
    pub async fn compliant_secret(&self, namespace: &str, value: &serde_json::Value) -> String {
        let key = self.key().await;
        self.enable_rotation(&key).await;
        let name = unique(&format!("{namespace}/db"));
        self.secret(&name, &value.to_string(), Some(&key.arn)).await;
        name
    }

    pub async fn alias(&self, alias: &str, key: &Key) {
        self.kms.create_alias().alias_name(alias).target_key_id(&key.id).send().await.expect("CreateAlias");
    }

    // moto wants the key id (an ARN gives a 500) for the three calls below.
    pub async fn enable_rotation(&self, key: &Key) {
        self.kms.enable_key_rotation().key_id(&key.id).send().await.expect("EnableKeyRotation");
    }

    pub async fn schedule_deletion(&self, key: &Key) {
        self.kms
            .schedule_key_deletion()
            .key_id(&key.id)
            .pending_window_in_days(7)
            .send()
            .await
            .expect("ScheduleKeyDeletion");
    }

    pub async fn disable(&self, key: &Key) {
        self.kms.disable_key().key_id(&key.id).send().await.expect("DisableKey");
    }

    /// Creates a secret (with `kms_key`, or the default key) and returns (ARN, version id).
    pub async fn secret(&self, name: &str, value: &str, kms_key: Option<&str>) -> (String, String) {
        let out = self
            .secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .set_kms_key_id(kms_key.map(str::to_string))
            .send()
            .await
            .expect("CreateSecret");
        (out.arn.expect("secret arn"), out.version_id.expect("version id"))
    }

    /// Stores a new current value and returns its version id.
    pub async fn put_value(&self, name: &str, value: &str) -> String {
        let out = self
            .secrets
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .expect("PutSecretValue");
        out.version_id.expect("version id")
    }

    pub async fn rotation(&self, name: &str, days: i64) {
        let rules = aws_sdk_secretsmanager::types::RotationRulesType::builder()
            .automatically_after_days(days)
            .build();
        self.secrets
            .rotate_secret()
            .secret_id(name)
            .rotation_rules(rules)
            .rotate_immediately(false)
            .send()
            .await
            .expect("RotateSecret");
    }

    /// Imports a self-signed certificate for `names` (the first is the subject) valid until
    /// `not_after`, with an ECDSA P-256 key, and returns its ARN.
    pub async fn certificate(&self, names: &[&str], not_after: jiff::Timestamp) -> String {
        self.certificate_with_key(names, not_after, &rcgen::PKCS_ECDSA_P256_SHA256).await
    }

    /// [`Seed::certificate`] with a key for `algorithm`.
    pub async fn certificate_with_key(
        &self,
        names: &[&str],
        not_after: jiff::Timestamp,
        algorithm: &'static rcgen::SignatureAlgorithm,
    ) -> String {
        let key = rcgen::KeyPair::generate_for(algorithm).expect("key pair");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
        let (y, m, d) = ymd(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48));
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = ymd(not_after);
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let cert = params.self_signed(&key).expect("self-signed certificate");
        let out = self
            .acm
            .import_certificate()
            .certificate(aws_smithy_types::Blob::new(cert.pem().into_bytes()))
            .private_key(aws_smithy_types::Blob::new(key.serialize_pem().into_bytes()))
            .send()
            .await
            .expect("ImportCertificate");
        out.certificate_arn.expect("certificate arn")
    }

    /// Requests an ACM-issued certificate for `domain` (moto gives it an RSA 2048-bit key, the
    /// default) and returns its ARN.
    pub async fn requested_certificate(&self, domain: &str) -> String {
        let out =
            self.acm.request_certificate().domain_name(domain).send().await.expect("RequestCertificate");
        out.certificate_arn.expect("certificate arn")
    }

    /// Creates a volume and returns its id.
    pub async fn volume(&self, encrypted: bool, kms_key: Option<&str>) -> String {
        let out = self
            .ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(1)
            .encrypted(encrypted)
            .set_kms_key_id(kms_key.map(str::to_string))
            .send()
            .await
            .expect("CreateVolume");
        out.volume_id.expect("volume id")
    }

    /// Creates an EKS cluster whose Secrets are envelope-encrypted with `secrets_key`, if given,
    /// and returns its name. (moto keeps `encryptionConfig` as given and answers it back.)
    // `resources` is deprecated (EKS's key now covers all API data) but still taken, and what
    // clusters made before carry.
    #[allow(deprecated)]
    pub async fn cluster(&self, secrets_key: Option<&str>) -> String {
        use aws_sdk_eks::types::{EncryptionConfig, Provider, VpcConfigRequest};
        let name = unique("cluster");
        let encryption = secrets_key.map(|key| {
            let provider = Provider::builder().key_arn(key).build();
            vec![EncryptionConfig::builder().resources("secrets").provider(provider).build()]
        });
        self.eks
            .create_cluster()
            .name(&name)
            .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
            .resources_vpc_config(VpcConfigRequest::builder().subnet_ids("subnet-0abc").build())
            .set_encryption_config(encryption)
            .send()
            .await
            .expect("CreateCluster");
        name
    }

    pub async fn ebs_default(&self, on: bool) {
        if on {
            self.ec2.enable_ebs_encryption_by_default().send().await.expect("EnableEbsEncryptionByDefault");
        } else {
            self.ec2.disable_ebs_encryption_by_default().send().await.expect("DisableEbsEncryptionByDefault");
        }
    }
}

/// moto does not implement GetEbsDefaultKmsKeyId: the answer AWS gives, for the fault proxy to
/// serve.
pub fn ebs_default_key_answer(key: &str) -> super::proxy::Fault {
    super::proxy::Fault::Respond {
        content_type: "text/xml;charset=UTF-8",
        body: format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><GetEbsDefaultKmsKeyIdResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>5f4a4e9c-0000-0000-0000-000000000000</requestId><kmsKeyId>{key}</kmsKeyId></GetEbsDefaultKmsKeyIdResponse>"#
        ),
    }
}

fn ymd(t: jiff::Timestamp) -> (i32, u8, u8) {
    let date = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    (i32::from(date.year()), date.month().unsigned_abs(), date.day().unsigned_abs())
}
