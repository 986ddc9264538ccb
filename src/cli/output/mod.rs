//! Placeholder replaced by the output formats branch.
use super::report::CheckReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Junit,
    Sarif,
    Policyreport,
}

pub fn render(
    report: &CheckReport,
    _: OutputFormat,
    out: &mut dyn std::io::Write,
    _: bool,
) -> std::io::Result<()> {
    for f in &report.findings {
        writeln!(out, "{} {} {} {} | fix: {}", f.severity, f.rule, f.resource, f.message, f.remediation)?;
    }
    Ok(())
}
