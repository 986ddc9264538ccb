//! The command line: `dpo check`, `dpo controller`, `dpo crdgen`.

pub mod check;
pub mod controller;
pub mod input;
pub mod output;
mod parallel;
pub mod report;
mod yaml;

use crate::api::Severity;
use crate::aws::{AwsFacts, AwsSettings};
use crate::policy::Offline;
use crate::policy::ingress::{AlbDefaults, DEFAULT_INGRESS_CLASS, DEFAULT_SSL_POLICY};
use check::{Checked, Context, Policies, Settings};
use clap::{Args, Parser, Subcommand, ValueEnum};
pub use controller::{ControllerArgs, run_controller};
use input::{InputError, Source};
use output::{OutputFormat, ReportApi};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Data Protection Operator: data-protection policy for Amazon EKS.
#[derive(Debug, Parser)]
#[command(name = "dpo", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests against data-protection policy, offline.
    Check(CheckArgs),
    /// Run the controllers (in a cluster: leader election, /metrics, /healthz, /readyz).
    Controller(Box<ControllerArgs>),
    /// Print the CustomResourceDefinitions (the content of crds/).
    Crdgen,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories (read recursively for *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(required = true, value_name = "PATH|-")]
    pub paths: Vec<String>,
    /// Files or directories of EncryptedVolumePolicy / TlsIngressPolicy objects: the only
    /// policies applied, those among the inputs are then `policy-in-input` findings (default:
    /// the inputs' policies, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub policy: Vec<String>,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// How far an object's references (IngressClass, IngressClassParams, IngressGroup members,
    /// the default class, Namespaces, Gateway classes and routes) reach among the inputs.
    #[arg(long, value_enum, default_value_t = Context::Directory)]
    pub context: Context,
    /// The report API of `--output policyreport`.
    #[arg(long, value_enum, default_value_t = ReportApi::Openreports)]
    pub report_api: ReportApi,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, default_value_t = Severity::High, value_name = "low|medium|high|critical")]
    pub fail_on: Severity,
    /// Report what could be read even when some inputs are bad (the exit code is still 2).
    #[arg(long)]
    pub keep_going: bool,
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Read the AWS facts that rules otherwise skip (KMS keys, certificates, volumes, secrets)
    /// with the default credential chain. Read-only calls; see deploy/iam-policy.json.
    #[arg(long)]
    pub aws: bool,
    /// AWS region for --aws (default: the SDK's, e.g. AWS_REGION).
    #[arg(long, requires = "aws")]
    pub region: Option<String>,
    /// The `--default-ssl-policy` of the cluster's AWS Load Balancer Controller: the security
    /// policy of listeners that set none.
    #[arg(long, default_value = DEFAULT_SSL_POLICY, value_name = "POLICY", value_parser = AlbDefaults::parse_ssl_policy)]
    pub alb_default_ssl_policy: String,
    /// The `--ingress-class` of the cluster's AWS Load Balancer Controller: the class it claims.
    #[arg(long, default_value = DEFAULT_INGRESS_CLASS, value_name = "CLASS", value_parser = AlbDefaults::parse_ingress_class)]
    pub alb_ingress_class: String,
    /// The manifests are for an EKS Auto Mode cluster: LoadBalancer Services without a
    /// `loadBalancerClass` get Auto Mode's NLB (`eks.amazonaws.com/nlb`).
    #[arg(long)]
    pub eks_auto_mode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Exit codes of `dpo check`.
pub const EXIT_FAILED_POLICY: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// Runs `dpo check`, writing the report to stdout and input errors to stderr.
pub fn run_check(args: &CheckArgs) -> ExitCode {
    // Offline checks do no I/O worth a thread pool; --aws calls run concurrently on one thread.
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(check_command(args)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

async fn check_command(args: &CheckArgs) -> ExitCode {
    let sources: Vec<Source> = args.paths.iter().map(|p| Source::parse(p)).collect();
    let policy_sources: Vec<Source> = args.policy.iter().map(|p| Source::parse(p)).collect();
    // A trusted file met again among the inputs (`dpo check . --policy policies/`) stays trusted.
    let trusted = (!policy_sources.is_empty()).then(|| input::read_policies(&policy_sources));
    let no_skip = HashSet::new();
    let skip = trusted.as_ref().map_or(&no_skip, |t| &t.files);
    let policies = match &trusted {
        Some(trusted) => Policies::Trusted(&trusted.objects),
        None => Policies::FromInputs,
    };
    let alb = AlbDefaults {
        ssl_policy: args.alb_default_ssl_policy.clone(),
        ingress_class: args.alb_ingress_class.clone(),
        eks_auto_mode: args.eks_auto_mode,
        // Manifests, not the cluster: what they lack may exist.
        inventory_complete: false,
    };
    let settings = Settings { policies, context: args.context, alb: &alb };
    let checked = if args.aws {
        let aws_settings = AwsSettings { default_region: args.region.clone(), ..AwsSettings::default() };
        let aws = match AwsFacts::from_env(aws_settings, &mut Registry::default()).await {
            Ok(aws) => aws,
            Err(e) => {
                eprintln!("error: --aws: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        };
        // Facts are gathered over every document, judged more than once: all of them are held.
        let inputs = input::read_sources(&sources, skip);
        let facts = check::gather_facts(&inputs, settings, &aws).await;
        Checked::of(&inputs, check::check(&inputs, settings, &facts))
    } else {
        let listing = input::list_sources(&sources, skip);
        check::check_listing(&listing, settings, &Offline { now: jiff::Timestamp::now() })
    };
    let Checked { mut report, read_errors, spec_errors, input_policies } = checked;
    let trusted_errors = trusted.iter().flat_map(|t| &t.errors);
    let errors: Vec<&InputError> = trusted_errors.chain(&read_errors).chain(&spec_errors).collect();
    let mut stderr = std::io::stderr().lock();
    if trusted.is_none() {
        for (policy, location) in &input_policies {
            let _ = writeln!(
                stderr,
                "warning: {}:{}: {} {} comes with the checked manifests and is applied; pass the policies CI enforces with --policy, so that a change cannot bring its own",
                location.file, location.line, policy.kind, policy.name
            );
        }
    }
    for error in &errors {
        let _ = writeln!(stderr, "error: {error}");
    }
    for warning in &report.warnings {
        let _ = writeln!(stderr, "warning: {}", warning.message);
    }
    if !errors.is_empty() && !args.keep_going {
        let _ = writeln!(
            stderr,
            "{} input error(s); fix them, or pass --keep-going to check the rest",
            errors.len()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let stdout = std::io::stdout();
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    report.input_errors = errors.iter().map(|&e| e.clone()).collect();
    drop(errors);
    let style = output::Style { color, report_api: args.report_api };
    // Standard output is line-buffered: a report of a million lines would be a million writes.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = output::render(&report, args.output, &mut out, style).and_then(|()| out.flush());
    if let Err(e) = written {
        let _ = writeln!(stderr, "error: cannot write the report: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let code = if !report.input_errors.is_empty() {
        ExitCode::from(EXIT_BAD_INPUT)
    } else if report.fails(args.fail_on) {
        ExitCode::from(EXIT_FAILED_POLICY)
    } else {
        ExitCode::SUCCESS
    };
    std::mem::forget(report);
    code
}
