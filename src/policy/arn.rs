//! Amazon Resource Names: `arn:<partition>:<service>:<region>:<account>:<resource>`, read in one
//! place for every rule and fact that takes one.

/// An ARN split into its parts. Nothing is checked beyond the shape: callers judge the parts
/// they care about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    /// Everything after the account, colons included (`secret:prod/db-AbCdEf`, `key/1234`).
    pub resource: &'a str,
}

/// The partition, region and account a resource lives in. KMS keys and their aliases belong to
/// one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let mut parts = text.strip_prefix("arn:")?.splitn(5, ':');
        Some(Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        })
    }

    /// Whether the partition is one of AWS's (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub fn in_aws_partition(&self) -> bool {
        is_aws_partition(self.partition)
    }

    /// Whether the account part is a 12-digit account id.
    pub fn has_account_id(&self) -> bool {
        is_account_id(self.account)
    }

    /// The name part of a Secrets Manager secret ARN (`secret:<name>`, with the random suffix
    /// when the ARN is complete); `None` for any other ARN.
    pub fn secret_name(&self) -> Option<&'a str> {
        if self.service != "secretsmanager" {
            return None;
        }
        self.resource.strip_prefix("secret:").filter(|name| !name.is_empty())
    }

    /// Name and id of a regional WAFv2 Web ACL ARN (`regional/webacl/<name>/<id>`), the parts
    /// GetWebACL takes; `None` for any other ARN (CloudFront's `global` ACLs cannot attach to an
    /// ALB).
    pub fn regional_web_acl(&self) -> Option<(&'a str, &'a str)> {
        if self.service != "wafv2" {
            return None;
        }
        let (name, id) = self.resource.strip_prefix("regional/webacl/")?.split_once('/')?;
        (!name.is_empty() && !id.is_empty() && !id.contains('/')).then_some((name, id))
    }

    pub fn scope(&self) -> Scope<'a> {
        Scope { partition: self.partition, region: self.region, account: self.account }
    }
}

/// Whether `text` names one of AWS's partitions (`aws`, `aws-cn`, `aws-us-gov`, ...).
pub fn is_aws_partition(text: &str) -> bool {
    text.strip_prefix("aws").is_some_and(|rest| rest.bytes().all(|b| b == b'-' || b.is_ascii_lowercase()))
}

/// Whether `text` is a 12-digit account id.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_web_acl_parts() {
        let parse = |text| Arn::parse(text).and_then(|arn| arn.regional_web_acl());
        assert_eq!(
            parse("arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop/a1b2-c3"),
            Some(("shop", "a1b2-c3"))
        );
        assert_eq!(parse("arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop/a1b2"), None);
        assert_eq!(parse("arn:aws:wafv2:us-east-1:123456789012:regional/ipset/shop/a1b2"), None);
        assert_eq!(parse("arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop"), None);
        assert_eq!(parse("arn:aws:acm:us-east-1:123456789012:regional/webacl/shop/a1b2"), None);
    }

    #[test]
    fn parts_of_arns_and_what_is_not_one() {
        let arn =
            Arn::parse("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:prod/db-AbCdEf").unwrap();
        assert_eq!(
            (arn.partition, arn.service, arn.region, arn.account, arn.resource),
            ("aws-cn", "secretsmanager", "cn-north-1", "123456789012", "secret:prod/db-AbCdEf")
        );
        assert!(arn.in_aws_partition() && arn.has_account_id());
        let iam = Arn::parse("arn:aws:iam::123456789012:role/dpo").unwrap();
        assert_eq!((iam.region, iam.resource), ("", "role/dpo"));
        assert!(!Arn::parse("arn:AWS:s3:::bucket").unwrap().in_aws_partition());
        assert!(!Arn::parse("arn:aws:acm:us-east-1:1234:certificate/x").unwrap().has_account_id());
        assert_eq!(arn.secret_name(), Some("prod/db-AbCdEf"));
        assert_eq!(iam.secret_name(), None);
        assert_eq!(
            Arn::parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:").unwrap().secret_name(),
            None
        );
        assert_eq!(
            Arn::parse("arn:aws:secretsmanager:us-east-1:123456789012:key:x").unwrap().secret_name(),
            None
        );
        assert_eq!(Arn::parse("arn:aws:kms:us-east-1"), None);
        assert_eq!(Arn::parse("alias/shop"), None);
    }
}
