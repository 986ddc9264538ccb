//! What went wrong talking to AWS, in the few classes callers act on.

use crate::policy::arn::Arn;
use aws_smithy_runtime_api::client::result::{DispatchFailure, SdkError};
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS failure, classified. Messages come from AWS or from us and never carry a secret value:
/// AWS does not echo values in errors, and we never format one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// The thing does not exist (or is scheduled for deletion, for Secrets Manager).
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// IAM said no. `action` is the IAM action that was refused, e.g. `secretsmanager:GetSecretValue`.
    #[error("access denied: {action} on {resource}: {message}")]
    AccessDenied { action: &'static str, resource: String, message: String },
    /// AWS kept throttling until the retry budget ran out.
    #[error("throttled by AWS calling {action} ({attempts} attempts)")]
    Throttled { action: &'static str, attempts: u32 },
    /// 5xx, timeout or connection failure that outlived the retry budget.
    #[error("AWS unavailable calling {action} ({attempts} attempts): {message}")]
    Transient { action: &'static str, attempts: u32, message: String },
    /// The request can never succeed as written: bad id or ARN, wrong region, unknown parameter.
    #[error("invalid reference for {action}: {message}")]
    Invalid { action: &'static str, message: String },
    /// The role is not in the allowlist; no AWS call was made.
    #[error(
        "role {role_arn} is not among the roles the operator may assume (--allowed-role, Helm aws.allowedRoles)"
    )]
    RoleNotAllowed { role_arn: String },
}

/// The retry-relevant class of an error, also the `outcome` label of the request counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    NotFound,
    AccessDenied,
    Throttled,
    Transient,
    Invalid,
}

impl ErrorClass {
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::NotFound => "not_found",
            ErrorClass::AccessDenied => "access_denied",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Transient => "transient",
            ErrorClass::Invalid => "invalid",
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Throttled | ErrorClass::Transient)
    }
}

impl AwsError {
    /// A CamelCase reason for a status condition.
    pub fn reason(&self) -> &'static str {
        match self {
            AwsError::NotFound { kind, .. } => match *kind {
                "secret" | "secret version" => "SecretNotFound",
                "KMS key" => "KmsKeyNotFound",
                "certificate" => "CertificateNotFound",
                "volume" => "VolumeNotFound",
                "EKS cluster" => "ClusterNotFound",
                _ => "NotFound",
            },
            AwsError::AccessDenied { .. } => "AccessDenied",
            AwsError::Throttled { .. } => "AwsThrottled",
            AwsError::Transient { .. } => "AwsUnavailable",
            AwsError::Invalid { .. } => "InvalidReference",
            AwsError::RoleNotAllowed { .. } => "AccessNotAllowed",
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            AwsError::NotFound { .. } => ErrorClass::NotFound,
            AwsError::AccessDenied { .. } => ErrorClass::AccessDenied,
            AwsError::Throttled { .. } => ErrorClass::Throttled,
            AwsError::Transient { .. } => ErrorClass::Transient,
            AwsError::Invalid { .. } | AwsError::RoleNotAllowed { .. } => ErrorClass::Invalid,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, AwsError::NotFound { .. })
    }
}

/// One failed attempt, before the retry loop decides what it becomes.
#[derive(Clone, Debug)]
pub struct AttemptError {
    pub class: ErrorClass,
    /// The AWS error code when there is one (`ThrottlingException`), else a short description.
    pub code: String,
    pub message: String,
}

impl AttemptError {
    /// Turns the last attempt's failure into the error the caller sees.
    pub fn into_error(
        self,
        action: &'static str,
        id: &str,
        not_found_kind: &'static str,
        attempts: u32,
    ) -> AwsError {
        match self.class {
            ErrorClass::NotFound => AwsError::NotFound { kind: not_found_kind, id: id.to_string() },
            ErrorClass::AccessDenied => {
                AwsError::AccessDenied { action, resource: id.to_string(), message: self.message }
            }
            ErrorClass::Throttled => AwsError::Throttled { action, attempts },
            ErrorClass::Transient => AwsError::Transient { action, attempts, message: self.describe() },
            ErrorClass::Invalid => AwsError::Invalid { action, message: self.describe() },
        }
    }

    /// An error reported inside a successful response (BatchGetSecretValue's `Errors`).
    pub fn from_code(code: &str, message: Option<String>) -> Self {
        let message = redact_caller(message.as_deref().unwrap_or_default());
        Self { class: classify_code(code, 400), code: code.to_string(), message }
    }

    fn describe(&self) -> String {
        if self.message.is_empty() { self.code.clone() } else { format!("{}: {}", self.code, self.message) }
    }
}

/// Error codes AWS uses for throttling across the services we call.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "LimitExceededException",
    "SlowDown",
];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
];

const NOT_FOUND_CODES: &[&str] =
    &["ResourceNotFoundException", "NotFoundException", "WAFNonexistentItemException"];

const TRANSIENT_CODES: &[&str] = &[
    "InternalFailure",
    "InternalServiceError",
    "InternalError",
    "ServiceUnavailable",
    "KMSInternalException",
];

fn classify_code(code: &str, status: u16) -> ErrorClass {
    if THROTTLING_CODES.contains(&code) || status == 429 {
        ErrorClass::Throttled
    } else if ACCESS_DENIED_CODES.contains(&code) || status == 403 {
        ErrorClass::AccessDenied
    } else if NOT_FOUND_CODES.contains(&code) || code.ends_with(".NotFound") {
        ErrorClass::NotFound
    } else if TRANSIENT_CODES.contains(&code) || status >= 500 {
        ErrorClass::Transient
    } else {
        ErrorClass::Invalid
    }
}

/// Classifies one SDK failure.
pub fn classify<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> AttemptError {
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("Unknown").to_string();
            let message = redact_caller(ctx.err().message().unwrap_or_default());
            AttemptError { class: classify_code(&code, status), code, message }
        }
        SdkError::TimeoutError(_) => transient("Timeout", "the request timed out"),
        SdkError::DispatchFailure(failure) if failure.is_user() => AttemptError {
            class: ErrorClass::Invalid,
            code: "DispatchFailure".into(),
            message: dispatch_message(failure),
        },
        SdkError::DispatchFailure(failure) => transient("DispatchFailure", &dispatch_message(failure)),
        SdkError::ResponseError(_) => transient("ResponseError", "the response could not be read"),
        SdkError::ConstructionFailure(_) => AttemptError {
            class: ErrorClass::Invalid,
            code: "ConstructionFailure".into(),
            message: "the request could not be built".into(),
        },
        _ => transient("Unknown", "unclassified SDK error"),
    }
}

/// Stands for the caller in AWS messages.
const CALLER: &str = "<operator identity>";

/// `message` without the caller AWS names in it (`User: arn:aws:sts::111111111111:assumed-role/
/// dpo/i-0abc is not authorized to perform: ...`): the operator's own session, which tenants
/// reading status and Events must not learn. The action and the resource stay, for a person to
/// act on.
fn redact_caller(message: &str) -> String {
    let mut previous = "";
    let words = message.split(' ').map(|word| {
        let arn = word.trim_end_matches([',', '.', ';', ')']);
        let caller = previous == "User:" || Arn::parse(arn).is_some_and(|arn| arn.service == "sts");
        previous = word;
        if caller { word.replacen(arn, CALLER, 1) } else { word.to_string() }
    });
    words.collect::<Vec<_>>().join(" ")
}

/// The chain of causes (`io error: … Connection refused`), not the structs' debug dump.
fn dispatch_message(failure: &DispatchFailure) -> String {
    match failure.as_connector_error() {
        Some(cause) => DisplayErrorContext(cause).to_string(),
        None => "the request could not be sent".into(),
    }
}

fn transient(code: &str, message: &str) -> AttemptError {
    AttemptError { class: ErrorClass::Transient, code: code.to_string(), message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_classes() {
        assert_eq!(classify_code("ThrottlingException", 400), ErrorClass::Throttled);
        assert_eq!(classify_code("Whatever", 429), ErrorClass::Throttled);
        assert_eq!(classify_code("RequestLimitExceeded", 503), ErrorClass::Throttled);
        assert_eq!(classify_code("AccessDeniedException", 400), ErrorClass::AccessDenied);
        assert_eq!(classify_code("UnauthorizedOperation", 403), ErrorClass::AccessDenied);
        assert_eq!(classify_code("ResourceNotFoundException", 400), ErrorClass::NotFound);
        assert_eq!(classify_code("InvalidVolume.NotFound", 400), ErrorClass::NotFound);
        assert_eq!(classify_code("InternalFailure", 500), ErrorClass::Transient);
        assert_eq!(classify_code("Unknown", 502), ErrorClass::Transient);
        assert_eq!(classify_code("ValidationException", 400), ErrorClass::Invalid);
    }

    #[test]
    fn the_caller_is_redacted_from_aws_messages_and_the_action_and_resource_stay() {
        let message = "User: arn:aws:sts::111111111111:assumed-role/dpo/i-0abc is not authorized to perform: \
                       sts:AssumeRole on resource: arn:aws:iam::222222222222:role/shop-reader";
        let denied = AttemptError::from_code("AccessDenied", Some(message.into())).into_error(
            "sts:AssumeRole",
            "arn:aws:iam::222222222222:role/shop-reader",
            "role",
            1,
        );
        let shown = denied.to_string();
        assert!(!shown.contains("111111111111") && !shown.contains("assumed-role"), "{shown}");
        assert!(
            shown.contains("User: <operator identity> is not authorized to perform: sts:AssumeRole"),
            "{shown}"
        );
        assert!(shown.contains("on resource: arn:aws:iam::222222222222:role/shop-reader"), "{shown}");

        let user = "User: arn:aws:iam::111111111111:user/ci is not authorized to perform: kms:DescribeKey";
        let transient = AttemptError::from_code("InternalFailure", Some(user.into()));
        assert_eq!(
            transient.message,
            "User: <operator identity> is not authorized to perform: kms:DescribeKey"
        );
        // A session ARN named anywhere else is the operator's too.
        let expired = AttemptError::from_code(
            "ExpiredToken",
            Some("token of arn:aws:sts::111111111111:assumed-role/dpo/x, expired.".into()),
        );
        assert_eq!(expired.message, "token of <operator identity>, expired.");
    }

    #[test]
    fn reasons_are_camel_case_and_specific() {
        let not_found = AwsError::NotFound { kind: "secret", id: "a/b".into() };
        assert_eq!(not_found.reason(), "SecretNotFound");
        let denied = AttemptError {
            class: ErrorClass::AccessDenied,
            code: "AccessDeniedException".into(),
            message: "no".into(),
        }
        .into_error("secretsmanager:GetSecretValue", "a/b", "secret", 1);
        assert_eq!(denied.reason(), "AccessDenied");
        assert!(denied.to_string().contains("secretsmanager:GetSecretValue"), "{denied}");
        assert_eq!(
            AwsError::Transient { action: "x", attempts: 3, message: String::new() }.reason(),
            "AwsUnavailable"
        );
        assert_eq!(AwsError::Invalid { action: "x", message: String::new() }.reason(), "InvalidReference");
        assert_eq!(AwsError::RoleNotAllowed { role_arn: "r".into() }.reason(), "AccessNotAllowed");
    }
}
