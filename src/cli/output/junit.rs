//! JUnit XML: one test case per rule judged on a resource, one test suite per resource kind.
//!
//! GitLab lists a job's test cases flat (suite column: `classname`, file column: `file`) and
//! Jenkins groups them by `classname` split at its last dot, so `classname` is the resource kind
//! (never dotted) and the test name carries the resource's name, which may hold dots. A failed case
//! carries the findings' messages and fixes in its `<failure>` text, which both show in full.

use super::pieces::{self, OBJECTS_PER_PIECE};
use super::{NEEDS_AWS, Outcome, RuleOutcome, rule_outcomes};
use crate::api::Finding;
use crate::cli::report::{CheckReport, CheckedObject};
use std::io::{self, Write};
use std::{iter, ops};

pub(super) fn render(report: &CheckReport, out: &mut dyn Write) -> io::Result<()> {
    let suites = suites(report);
    let mut total = Tally::default();
    for suite in &suites {
        total += suite.tally;
    }
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="dpo check" tests="{}" failures="{}" errors="0" skipped="{}">"#,
        total.tests, total.failures, total.skipped,
    )?;
    let parts: Vec<Part<'_, '_>> = suites
        .iter()
        .flat_map(|suite| {
            let cases = suite.objects.chunks(OBJECTS_PER_PIECE).map(Part::Cases);
            iter::once(Part::Open(suite)).chain(cases).chain([Part::Close])
        })
        .collect();
    pieces::write_parts(&parts, out)?;
    writeln!(out, "</testsuites>")
}

/// A part of the document, rendered on any core: a suite's opening tag, the cases of some of its
/// resources, or its closing tag.
enum Part<'s, 'a> {
    Open(&'s Suite<'a>),
    Cases(&'s [&'a CheckedObject]),
    Close,
}

impl pieces::Part for Part<'_, '_> {
    fn objects(&self) -> usize {
        match self {
            Part::Cases(objects) => objects.len(),
            Part::Open(_) | Part::Close => 0,
        }
    }

    fn render(&self, buffer: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Part::Open(suite) => writeln!(
                buffer,
                r#"  <testsuite name="{}" tests="{}" failures="{}" errors="0" skipped="{}">"#,
                escape(suite.kind, true),
                suite.tally.tests,
                suite.tally.failures,
                suite.tally.skipped,
            ),
            Part::Cases(objects) => objects.iter().try_for_each(|object| {
                rule_outcomes(object).iter().try_for_each(|outcome| write_case(object, outcome, buffer))
            }),
            Part::Close => writeln!(buffer, "  </testsuite>"),
        }
    }
}

fn write_case(object: &CheckedObject, outcome: &RuleOutcome<'_>, out: &mut dyn Write) -> io::Result<()> {
    let resource = &object.resource;
    let subject = match &resource.namespace {
        Some(namespace) => format!("{namespace}/{}", resource.name),
        None => resource.name.clone(),
    };
    let location = &object.location;
    let open = format!(
        r#"    <testcase classname="{}" name="{}" file="{}" line="{}""#,
        escape(&resource.kind, true),
        escape(&format!("{subject}: {}", outcome.rule_id), true),
        escape(&location.file, true),
        location.line,
    );
    match &outcome.outcome {
        Outcome::Pass => writeln!(out, "{open}/>"),
        Outcome::Skip => {
            writeln!(out, "{open}>")?;
            writeln!(out, r#"      <skipped message="{}"/>"#, escape(NEEDS_AWS, true))?;
            writeln!(out, "    </testcase>")
        }
        Outcome::Fail(findings) => {
            writeln!(out, "{open}>")?;
            write_failure(findings, out)?;
            writeln!(out, "    </testcase>")
        }
    }
}

/// One `<failure>` for all the rule's findings on the resource: JUnit allows one per test case.
fn write_failure(findings: &[&Finding], out: &mut dyn Write) -> io::Result<()> {
    let message: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    let worst = findings.iter().map(|f| f.severity).max().unwrap_or_default();
    let details: String = findings
        .iter()
        .map(|f| format!("[{}] {}\nfix: {}\n", f.severity, f.message, f.remediation))
        .collect();
    writeln!(
        out,
        r#"      <failure message="{}" type="{worst}">{}</failure>"#,
        escape(&message.join("; "), true),
        escape(&details, false),
    )
}

/// The resources of one kind that have test cases, and how their cases came out.
struct Suite<'a> {
    kind: &'a str,
    objects: Vec<&'a CheckedObject>,
    tally: Tally,
}

#[derive(Clone, Copy, Default)]
struct Tally {
    tests: usize,
    failures: usize,
    skipped: usize,
}

impl Tally {
    fn of(outcomes: &[RuleOutcome<'_>]) -> Tally {
        let count = |wanted: fn(&Outcome<'_>) -> bool| outcomes.iter().filter(|o| wanted(&o.outcome)).count();
        Tally {
            tests: outcomes.len(),
            failures: count(|outcome| matches!(outcome, Outcome::Fail(_))),
            skipped: count(|outcome| *outcome == Outcome::Skip),
        }
    }
}

impl ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.skipped += other.skipped;
    }
}

/// Resources grouped by kind, leaving out those without test cases; kinds and resources in the
/// order first met, as their cases are.
fn suites(report: &CheckReport) -> Vec<Suite<'_>> {
    let mut suites: Vec<Suite<'_>> = Vec::new();
    for object in report.objects() {
        let outcomes = rule_outcomes(object);
        if outcomes.is_empty() {
            continue;
        }
        let kind = &*object.resource.kind;
        let suite = match suites.iter().position(|suite| suite.kind == kind) {
            Some(at) => &mut suites[at],
            None => {
                suites.push(Suite { kind, objects: Vec::new(), tally: Tally::default() });
                suites.last_mut().expect("the suite just pushed")
            }
        };
        suite.objects.push(object);
        suite.tally += Tally::of(&outcomes);
    }
    suites
}

/// Escapes `text` for XML element content or, with `attribute`, a double- or single-quoted
/// attribute value, where whitespace other than spaces would otherwise be normalised away.
/// Characters XML 1.0 cannot carry at all become U+FFFD.
fn escape(text: &str, attribute: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Parsers turn a raw CR into LF, and raw tabs and newlines in attributes into spaces.
            '\r' => escaped.push_str("&#13;"),
            '\n' | '\t' if attribute => escaped.push_str(&format!("&#{};", u32::from(c))),
            '\n' | '\t' => escaped.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => escaped.push('\u{fffd}'),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::super::{OutputFormat, sample};
    use super::escape;

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("invalid XML ({e}):\n{xml}"))
    }

    fn count_attribute(node: roxmltree::Node<'_, '_>, name: &str) -> usize {
        let value = node.attribute(name).unwrap_or_else(|| panic!("{name} missing on {node:?}"));
        value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a count"))
    }

    fn children<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Vec<roxmltree::Node<'a, 'i>> {
        node.children().filter(|child| child.has_tag_name(name)).collect()
    }

    #[test]
    fn one_case_per_rule_and_resource_with_correct_counts() {
        let xml = sample::rendered(&sample::mixed(), OutputFormat::Junit);
        let doc = parse(&xml);
        let root = doc.root_element();
        assert!(root.has_tag_name("testsuites"));

        let suites = children(root, "testsuite");
        let names: Vec<_> = suites.iter().filter_map(|s| s.attribute("name")).collect();
        assert_eq!(names, ["Ingress", "StorageClass", "ProtectedSecret"]);

        let cases: Vec<_> = suites.iter().flat_map(|s| children(*s, "testcase")).collect();
        // web: 3 checked + 2 skipped; gp2: 1 + 1; db: 1 + 2; api: 1.
        assert_eq!(cases.len(), 11);
        let with = |name: &str| cases.iter().filter(|c| !children(**c, name).is_empty()).count();
        assert_eq!(with("failure"), 4);
        assert_eq!(with("skipped"), 5);

        assert_eq!(count_attribute(root, "tests"), 11);
        assert_eq!(count_attribute(root, "failures"), 4);
        assert_eq!(count_attribute(root, "skipped"), 5);
        assert_eq!(count_attribute(root, "errors"), 0);
        for suite in &suites {
            let suite_cases = children(*suite, "testcase");
            let suite_with =
                |name: &str| suite_cases.iter().filter(|c| !children(**c, name).is_empty()).count();
            assert_eq!(count_attribute(*suite, "tests"), suite_cases.len());
            assert_eq!(count_attribute(*suite, "failures"), suite_with("failure"));
            assert_eq!(count_attribute(*suite, "skipped"), suite_with("skipped"));
        }
    }

    #[test]
    fn a_report_rendered_in_many_pieces_keeps_every_case_in_order_with_its_counts() {
        let copies = 300;
        let xml = sample::rendered(&sample::copies(copies), OutputFormat::Junit);
        let doc = parse(&xml);
        let suites = children(doc.root_element(), "testsuite");
        let kinds: Vec<_> = suites.iter().map(|s| s.attribute("name").unwrap_or_default()).collect();
        assert_eq!(kinds, ["Ingress", "StorageClass", "ProtectedSecret"]);
        let names = |suite: roxmltree::Node<'_, '_>| -> Vec<String> {
            children(suite, "testcase")
                .iter()
                .map(|c| c.attribute("name").unwrap_or_default().to_string())
                .collect()
        };
        // Per copy: web's five cases, then api's one.
        let ingress_names = names(suites[0]);
        assert_eq!(ingress_names.len(), 6 * copies);
        for (copy, cases) in ingress_names.chunks(6).enumerate() {
            assert_eq!(cases[0], format!("shop/web-{copy}: alb-http-to-https-redirection-check"));
            assert_eq!(cases[5], format!("payments/api-{copy}: alb-http-to-https-redirection-check"));
        }
        assert_eq!(count_attribute(doc.root_element(), "tests"), 11 * copies);
        for suite in &suites {
            let cases = children(*suite, "testcase");
            let with = |name: &str| cases.iter().filter(|c| !children(**c, name).is_empty()).count();
            assert_eq!(count_attribute(*suite, "tests"), cases.len());
            assert_eq!(count_attribute(*suite, "failures"), with("failure"));
            assert_eq!(count_attribute(*suite, "skipped"), with("skipped"));
        }
    }

    #[test]
    fn failure_carries_message_severity_and_fix_unharmed_by_escaping() {
        let xml = sample::rendered(&sample::mixed(), OutputFormat::Junit);
        let doc = parse(&xml);
        let case = doc
            .descendants()
            .find(|n| n.attribute("name") == Some("shop/web: alb-http-to-https-redirection-check"))
            .expect("the web redirect case");
        assert_eq!(case.attribute("classname"), Some("Ingress"));
        assert_eq!(case.attribute("file"), Some("deploy/web ingress.yaml"));
        assert_eq!(case.attribute("line"), Some("12"));

        let failure = children(case, "failure").pop().expect("a failure");
        let message = "Listener \"HTTP:80\" forwards <all> traffic & does not redirect.";
        assert_eq!(failure.attribute("message"), Some(message));
        assert_eq!(failure.attribute("type"), Some("high"));
        assert_eq!(
            failure.text(),
            Some(
                format!("[high] {message}\nfix: Annotate: alb.ingress.kubernetes.io/ssl-redirect: '443'\n")
                    .as_str()
            )
        );
    }

    #[test]
    fn skipped_case_says_why() {
        let xml = sample::rendered(&sample::mixed(), OutputFormat::Junit);
        let doc = parse(&xml);
        let case = doc
            .descendants()
            .find(|n| n.attribute("name") == Some("gp2: ec2-ebs-encryption-by-default"))
            .expect("the skipped gp2 case");
        let skipped = children(case, "skipped").pop().expect("a skipped element");
        assert!(skipped.attribute("message").is_some_and(|m| m.contains("--aws")));
    }

    #[test]
    fn empty_report_is_an_empty_valid_document() {
        let xml = sample::rendered(&sample::report(Vec::new()), OutputFormat::Junit);
        let doc = parse(&xml);
        assert_eq!(count_attribute(doc.root_element(), "tests"), 0);
        assert!(children(doc.root_element(), "testsuite").is_empty());
    }

    #[test]
    fn escaping_survives_a_parser_and_drops_what_xml_cannot_hold() {
        let original = "a<b>&\"c\" 'd'\r\n\te\u{1}";
        let xml = format!(
            "<x a=\"{}\" b='{}'>{}</x>",
            escape(original, true),
            escape(original, true),
            escape(original, false)
        );
        let doc = parse(&xml);
        let x = doc.root_element();
        let expected = "a<b>&\"c\" 'd'\r\n\te\u{fffd}";
        assert_eq!(x.attribute("a"), Some(expected));
        assert_eq!(x.attribute("b"), Some(expected));
        assert_eq!(x.text(), Some(expected));
    }
}
