//! ARNs: parsing user-supplied ones, building the provider's own.
//!
//! Users never type an ARN of something the component creates; every such
//! ARN is built here from the caller identity learned at Configure.

use std::fmt;
use std::str::FromStr;

/// A parsed ARN: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

impl FromStr for Arn {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(format!(
                "`{value}` is not an ARN; expected arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE"
            ));
        };
        if prefix != "arn" {
            return Err(format!(
                "`{value}` is not an ARN; it must start with `arn:`"
            ));
        }
        if !PARTITIONS.contains(&partition) {
            return Err(format!("`{value}` has unknown partition `{partition}`"));
        }
        if service.is_empty() || resource.is_empty() {
            return Err(format!("`{value}` is missing its service or resource part"));
        }
        if !account.is_empty() && !is_account_id(account) {
            return Err(format!(
                "`{value}` has account `{account}`, which is not a 12-digit account id"
            ));
        }
        Ok(Arn {
            partition: partition.into(),
            service: service.into(),
            region: region.into(),
            account: account.into(),
            resource: resource.into(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// IAM's wildcard characters: an ARN holding one names a set, not a thing.
pub fn has_wildcard(value: &str) -> bool {
    value.contains(['*', '?'])
}

/// Secrets Manager appends `-` and 6 random characters to every secret's
/// name in its ARN; a "partial" ARN without them matches in IAM only as a
/// prefix and may name a secret created later under the same name.
pub fn is_complete_secret_arn(arn: &Arn) -> bool {
    let Some(name) = arn.resource.strip_prefix("secret:") else {
        return false;
    };
    let bytes = name.as_bytes();
    bytes.len() > 7
        && bytes[bytes.len() - 7] == b'-'
        && bytes[bytes.len() - 6..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric())
}

pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Region names as AWS forms them, e.g. `eu-west-1`, `us-gov-west-1`.
pub fn is_region(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts[0].len() == 2
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Builds ARNs in the caller's partition, account and region.
#[derive(Clone, Copy)]
pub struct Arns<'a> {
    pub partition: &'a str,
    pub account: &'a str,
    pub region: &'a str,
}

impl Arns<'_> {
    pub fn in_region<'b>(&'b self, region: &'b str) -> Arns<'b> {
        Arns {
            partition: self.partition,
            account: self.account,
            region,
        }
    }

    pub fn account_root(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition, self.account)
    }

    pub fn iam_role(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:role/{name}", self.partition, self.account)
    }

    pub fn s3_bucket(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.partition)
    }

    pub fn s3_objects(&self, bucket: &str, prefix: &str) -> String {
        format!("arn:{}:s3:::{bucket}/{prefix}*", self.partition)
    }

    pub fn log_group(&self, name: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn log_streams(&self, name: &str) -> String {
        format!("{}:log-stream:*", self.log_group(name))
    }

    pub fn codebuild_project(&self, name: &str) -> String {
        format!(
            "arn:{}:codebuild:{}:{}:project/{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn codepipeline(&self, name: &str) -> String {
        format!(
            "arn:{}:codepipeline:{}:{}:{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn cloudwatch_alarm(&self, name: &str) -> String {
        format!(
            "arn:{}:cloudwatch:{}:{}:alarm:{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn events_rule(&self, name: &str) -> String {
        format!(
            "arn:{}:events:{}:{}:rule/{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn sns_topic(&self, name: &str) -> String {
        format!(
            "arn:{}:sns:{}:{}:{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn ssm_parameter(&self, name: &str) -> String {
        let name = name.trim_start_matches('/');
        format!(
            "arn:{}:ssm:{}:{}:parameter/{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn kms_key(&self, key_id: &str) -> String {
        format!(
            "arn:{}:kms:{}:{}:key/{key_id}",
            self.partition, self.region, self.account
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_arns() {
        let arn: Arn = "arn:aws:codestar-connections:eu-west-1:123456789012:connection/abc"
            .parse()
            .unwrap();
        assert_eq!(arn.service, "codestar-connections");
        assert_eq!(arn.region, "eu-west-1");
        assert_eq!(arn.resource, "connection/abc");
        assert_eq!(
            arn.to_string(),
            "arn:aws:codestar-connections:eu-west-1:123456789012:connection/abc"
        );
    }

    #[test]
    fn rejects_malformed_arns() {
        assert!("arn:aws:iam::12:role/x"
            .parse::<Arn>()
            .unwrap_err()
            .contains("12-digit"));
        assert!("arn:nope:iam::123456789012:role/x"
            .parse::<Arn>()
            .unwrap_err()
            .contains("partition"));
        assert!("role/x".parse::<Arn>().unwrap_err().contains("not an ARN"));
    }

    #[test]
    fn secret_arns_need_the_random_suffix() {
        let secret = |s: &str| {
            format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{s}")
                .parse::<Arn>()
                .unwrap()
        };
        assert!(is_complete_secret_arn(&secret("npm-token-AbCdEf")));
        assert!(is_complete_secret_arn(&secret("prod/db-a1B2c3")));
        assert!(!is_complete_secret_arn(&secret("npmtoken")));
        assert!(!is_complete_secret_arn(&secret("npm-token")));
        assert!(!is_complete_secret_arn(&secret("-AbCdEf")));
        assert!(!is_complete_secret_arn(&secret("token-AbC_Ef")));
    }

    #[test]
    fn wildcards_are_either_character() {
        assert!(has_wildcard("arn:aws:iam::123456789012:role/deploy-*"));
        assert!(has_wildcard(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdE?"
        ));
        assert!(!has_wildcard("arn:aws:iam::123456789012:role/deploy"));
    }

    #[test]
    fn recognises_regions() {
        assert!(is_region("eu-west-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(!is_region("eu-west"));
        assert!(!is_region("EU-west-1"));
    }

    #[test]
    fn builds_arns_for_the_caller() {
        let arns = Arns {
            partition: "aws-cn",
            account: "123456789012",
            region: "cn-north-1",
        };
        assert_eq!(arns.iam_role("r"), "arn:aws-cn:iam::123456789012:role/r");
        assert_eq!(
            arns.log_streams("/g"),
            "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/g:log-stream:*"
        );
        assert_eq!(
            arns.ssm_parameter("/app/token"),
            "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/app/token"
        );
    }
}
