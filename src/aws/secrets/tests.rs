use super::*;

#[test]
fn debug_of_a_value_never_shows_it() {
    let text = SecretValue::new("v1".into(), Some("hunter2-top-secret".into()), None);
    let binary =
        SecretValue::new("v2".into(), None, Some(aws_smithy_types::Blob::new(b"bin-secret".to_vec())));
    for value in [&text, &binary] {
        let shown = format!("{value:?} {value:#?}");
        assert!(!shown.contains("hunter2") && !shown.contains("bin-secret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
    assert_eq!(text.expose_text(), Some("hunter2-top-secret"));
    assert_eq!(binary.expose_bytes(), b"bin-secret");
    assert_eq!(binary.expose_text(), None);
}

#[test]
fn arn_references_become_name_filters() {
    assert_eq!(name_prefix("prod/shop/db"), "prod/shop/db");
    assert_eq!(
        name_prefix("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/shop/db-AbC123"),
        "prod/shop/db"
    );
    assert_eq!(
        name_prefix("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/shop/db"),
        "prod/shop/db"
    );
}

#[test]
fn references_match_by_name_arn_or_partial_arn() {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbC123";
    assert!(id_matches("prod/db", arn, "prod/db"));
    assert!(id_matches(arn, arn, "prod/db"));
    assert!(id_matches("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db", arn, "prod/db"));
    assert!(!id_matches("prod/d", arn, "prod/db"));
}

#[test]
fn a_name_or_partial_arn_never_matches_a_longer_name_sharing_its_prefix() {
    let longer = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-extra-AbC123";
    let partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db";
    assert!(!id_matches(partial, longer, "prod/db-extra"));
    assert!(!id_matches("prod/db", longer, "prod/db-extra"));
    // A partial ARN stands for `<partial>-` and exactly six random characters.
    assert!(!id_matches(partial, &format!("{partial}-AbC1234"), "prod/db"));
    assert!(!id_matches(partial, &format!("{partial}AbC123"), "prod/dbAbC123"));
    assert!(id_matches(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-extra",
        longer,
        "prod/db-extra"
    ));
}
