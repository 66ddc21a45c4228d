//! Gates of a deployment stage: a deployment window and CloudWatch alarms
//! before it starts, the same alarms (watched for the bake time) after it
//! deploys. They become V2 stage conditions made of AWS-owned rules only,
//! which CodePipeline evaluates under the pipeline's role.

use std::collections::BTreeMap;

use super::args::{Deployment, Gates};
use crate::aws::arn::Arn;
use crate::resource::{is_unknown, CheckContext, Failures};
use crate::resources::stage_conditions::{Condition, Rule};

/// A condition holds at most 5 rules; before entry one may be the window.
pub const MAX_ALARMS: usize = 4;
/// Bake time, in minutes: at least one, at most a day.
pub const BAKE_TIME: (u32, u32) = (1, 1440);
/// CloudWatch's limit on an alarm name.
const MAX_ALARM_NAME: usize = 255;
/// The areas of IANA time zone names (`Area/Location`), besides `UTC`.
const TIME_ZONE_AREAS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Etc",
    "Europe",
    "Indian",
    "Pacific",
];

/// Whether a failed stage rolls back: as asked, else when it is production.
pub fn rolls_back(deployment: &Deployment) -> bool {
    deployment
        .rollback_on_failure
        .unwrap_or(deployment.production.unwrap_or(false))
}

/// The alarm's name, from a name or from an alarm ARN
/// (`arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`).
fn alarm_name(alarm: &str) -> &str {
    alarm
        .strip_prefix("arn:")
        .and_then(|_| alarm.split_once(":alarm:"))
        .map_or(alarm, |(_, name)| name)
}

/// The names of the gates' alarms, in input order.
pub fn alarm_names(gates: Option<&Gates>) -> Vec<String> {
    gates
        .and_then(|g| g.alarms.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|a| alarm_name(a).to_string())
        .collect()
}

fn alarm_rules(names: &[String], wait_minutes: Option<u32>) -> Vec<Rule> {
    names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let mut configuration = BTreeMap::from([("AlarmName".to_string(), name.clone())]);
            if let Some(minutes) = wait_minutes {
                configuration.insert("WaitTime".into(), minutes.to_string());
            }
            Rule {
                name: format!("Alarm{}", index + 1),
                provider: "CloudWatchAlarm".into(),
                configuration,
            }
        })
        .collect()
}

/// The stage's `beforeEntry` and `onSuccess` conditions.
pub fn conditions(gates: Option<&Gates>) -> (Vec<Condition>, Vec<Condition>) {
    let Some(gates) = gates else {
        return (Vec::new(), Vec::new());
    };
    let alarms = alarm_names(Some(gates));
    let mut before: Vec<Rule> = gates
        .deployment_window
        .iter()
        .map(|window| {
            let mut configuration = BTreeMap::from([("Cron".to_string(), window.cron.clone())]);
            if let Some(zone) = &window.time_zone {
                configuration.insert("TimeZone".into(), zone.clone());
            }
            Rule {
                name: "DeploymentWindow".into(),
                provider: "DeploymentWindow".into(),
                configuration,
            }
        })
        .collect();
    before.extend(alarm_rules(&alarms, None));
    let wrap = |rules: Vec<Rule>, result: &str| -> Vec<Condition> {
        if rules.is_empty() {
            Vec::new()
        } else {
            vec![Condition {
                result: result.into(),
                rules,
            }]
        }
    };
    (
        wrap(before, "FAIL"),
        wrap(alarm_rules(&alarms, gates.bake_time_minutes), "ROLLBACK"),
    )
}

/// Rejects gates CodePipeline would refuse or that would not do what they
/// say, at `{path}.gates…`.
pub fn check(ctx: &CheckContext<'_>, path: &str, deployment: &Deployment, failures: &mut Failures) {
    let Some(gates) = &deployment.gates else {
        return;
    };
    let at = format!("{path}.gates");
    if let Some(window) = &gates.deployment_window {
        if let Err(reason) = check_cron(&window.cron) {
            failures.push(format!("{at}.deploymentWindow.cron"), reason);
        }
        if let Some(zone) = &window.time_zone {
            if !is_unknown(zone) && !is_time_zone(zone) {
                failures.push(
                    format!("{at}.deploymentWindow.timeZone"),
                    format!("`{zone}` is not an IANA time zone name; use UTC or Area/Location, e.g. Europe/Berlin or America/New_York"),
                );
            }
        }
    }
    let alarms = gates.alarms.as_deref().unwrap_or_default();
    if alarms.len() > MAX_ALARMS {
        failures.push(
            format!("{at}.alarms"),
            format!("{} alarms; a stage condition holds at most 5 rules, one of which may be the deployment window, so give at most {MAX_ALARMS} (a composite alarm can combine more)", alarms.len()),
        );
    }
    let home = ctx.aws.map(|aws| &aws.region);
    for (index, alarm) in alarms.iter().enumerate() {
        if let Err(reason) = check_alarm(ctx, alarm) {
            failures.push(format!("{at}.alarms[{index}]"), reason);
        }
    }
    if !alarms.is_empty() {
        if let (Some(home), Some(region)) = (home, &deployment.region) {
            if region != home {
                failures.push(
                    format!("{at}.alarms"),
                    format!("CodePipeline reads the alarms in the pipeline's region {home}, but this stage deploys to {region}; give alarms in {home} or leave alarms off this stage"),
                );
            }
        }
    }
    if let Some(minutes) = gates.bake_time_minutes {
        let (min, max) = BAKE_TIME;
        if alarms.is_empty() {
            failures.push(
                format!("{at}.bakeTimeMinutes"),
                "a bake time is how long the alarms are watched after the deploy (CodePipeline has no rule that only waits); give `alarms` too",
            );
        } else if !(min..=max).contains(&minutes) {
            failures.push(
                format!("{at}.bakeTimeMinutes"),
                format!("{minutes} is out of range; use {min} to {max} minutes"),
            );
        }
    }
}

/// An alarm name, or an alarm ARN of the pipeline's account and region.
fn check_alarm(ctx: &CheckContext<'_>, alarm: &str) -> Result<(), String> {
    if is_unknown(alarm) {
        return Ok(());
    }
    if alarm.starts_with("arn:") {
        let arn = alarm.parse::<Arn>().map_err(|_| {
            format!("`{alarm}` is not an alarm ARN; give the alarm's name, or arn:aws:cloudwatch:<region>:<account>:alarm:<name>")
        })?;
        if arn.service != "cloudwatch" || !arn.resource.starts_with("alarm:") {
            return Err(format!("`{alarm}` is not a CloudWatch alarm; give the alarm's name, or arn:aws:cloudwatch:<region>:<account>:alarm:<name>"));
        }
        if let Some(aws) = ctx.aws {
            if arn.account != aws.account_id || arn.region != aws.region {
                return Err(format!(
                    "`{alarm}` is in account {} and region {}; CodePipeline reads alarms of the pipeline's account {} and region {} only",
                    arn.account, arn.region, aws.account_id, aws.region
                ));
            }
        }
    }
    let name = alarm_name(alarm);
    if name.is_empty()
        || name.chars().count() > MAX_ALARM_NAME
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "`{alarm}` is not a valid alarm name; use 1 to {MAX_ALARM_NAME} characters without control characters"
        ));
    }
    Ok(())
}

/// `UTC`, or `Area/Location` with an IANA area: a shape check, since the
/// full time zone database is not worth carrying for one name.
fn is_time_zone(zone: &str) -> bool {
    if zone == "UTC" {
        return true;
    }
    let Some((area, location)) = zone.split_once('/') else {
        return false;
    };
    TIME_ZONE_AREAS.contains(&area)
        && !location.is_empty()
        && location
            .split('/')
            .all(|part| part.starts_with(|c: char| c.is_ascii_uppercase()) || area == "Etc")
        && location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-+/".contains(c))
}

/// CodePipeline's window cron: six fields and an optional year, the
/// seconds field always `*`, each field of the characters its position
/// allows.
pub fn check_cron(cron: &str) -> Result<(), String> {
    if is_unknown(cron) {
        return Ok(());
    }
    let help = "use `seconds minutes hours day-of-month month day-of-week [year]` with seconds `*`, e.g. `* * 9-16 ? * MON-FRI`";
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return Err(format!("`{cron}` has {} fields; {help}", fields.len()));
    }
    if fields[0] != "*" {
        return Err(format!("`{cron}` sets seconds; {help}"));
    }
    const NAMES: &[&str] = &[
        "seconds",
        "minutes",
        "hours",
        "day-of-month",
        "month",
        "day-of-week",
        "year",
    ];
    for (position, field) in fields.iter().enumerate().skip(1) {
        let allowed = |c: char| -> bool {
            c.is_ascii_digit()
                || ",-*/".contains(c)
                || match position {
                    3 => "?LW".contains(c),
                    4 => c.is_ascii_uppercase(),
                    5 => c.is_ascii_uppercase() || "?#".contains(c),
                    _ => false,
                }
        };
        if !field.chars().all(allowed) {
            return Err(format!(
                "`{field}` is not a valid {} field in `{cron}`; {help}",
                NAMES[position]
            ));
        }
    }
    if fields[3] != "?" && fields[5] != "?" {
        return Err(format!(
            "`{cron}` sets both day-of-month and day-of-week; make one of them `?`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::args::DeploymentWindow;

    fn gates(alarms: &[&str], bake: Option<u32>) -> Gates {
        Gates {
            deployment_window: Some(DeploymentWindow {
                cron: "* * 9-16 ? * MON-FRI".into(),
                time_zone: Some("Europe/Berlin".into()),
            }),
            alarms: Some(alarms.iter().map(|a| a.to_string()).collect()),
            bake_time_minutes: bake,
        }
    }

    #[test]
    fn gates_become_a_window_and_alarms_before_entry_and_alarms_that_roll_back() {
        let gates = gates(
            &[
                "errors",
                "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:latency p99",
            ],
            Some(30),
        );
        let (before, after) = conditions(Some(&gates));
        let [before] = before.as_slice() else {
            panic!("one condition: {before:?}")
        };
        assert_eq!(before.result, "FAIL");
        let providers: Vec<(&str, &str)> = before
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.provider.as_str()))
            .collect();
        assert_eq!(
            providers,
            vec![
                ("DeploymentWindow", "DeploymentWindow"),
                ("Alarm1", "CloudWatchAlarm"),
                ("Alarm2", "CloudWatchAlarm")
            ]
        );
        assert_eq!(before.rules[0].configuration["TimeZone"], "Europe/Berlin");
        assert_eq!(before.rules[2].configuration["AlarmName"], "latency p99");
        assert!(!before.rules[1].configuration.contains_key("WaitTime"));
        let [after] = after.as_slice() else {
            panic!("one condition: {after:?}")
        };
        assert_eq!(after.result, "ROLLBACK");
        assert_eq!(after.rules.len(), 2);
        assert!(after
            .rules
            .iter()
            .all(|r| r.configuration["WaitTime"] == "30"));
    }

    #[test]
    fn a_window_alone_has_no_success_condition() {
        let mut window = gates(&[], None);
        window.alarms = None;
        let (before, after) = conditions(Some(&window));
        assert_eq!(before[0].rules.len(), 1);
        assert!(after.is_empty());
        assert_eq!(conditions(None), (Vec::new(), Vec::new()));
    }

    #[test]
    fn window_crons_are_checked_for_shape() {
        for good in [
            "* * 9-16 ? * MON-FRI",
            "* 0/15 * L * ? 2027",
            "* * * ? * 6#3",
        ] {
            assert_eq!(check_cron(good), Ok(()), "{good}");
        }
        for bad in [
            "0 9 * * MON-FRI",
            "0 * 9-16 ? * MON-FRI",
            "* * 9-16 * * MON-FRI",
            "* * 9;16 ? * *",
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        for good in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+2",
        ] {
            assert!(is_time_zone(good), "{good}");
        }
        for bad in [
            "CET",
            "Mars/Olympus",
            "Europe/",
            "europe/berlin",
            "Europe/Ber lin",
        ] {
            assert!(!is_time_zone(bad), "{bad}");
        }
    }

    fn failures_of(deployment: serde_json::Value) -> Vec<String> {
        let deployment: Deployment = serde_json::from_value(deployment).unwrap();
        let ctx = CheckContext {
            name: "p",
            random_seed: b"gates",
            aws: None,
        };
        let mut failures = Failures::default();
        check(&ctx, "deployments[1]", &deployment, &mut failures);
        match failures.into_result(()) {
            Ok(()) => Vec::new(),
            Err(found) => found.into_iter().map(|f| f.property).collect(),
        }
    }

    #[test]
    fn bad_gates_are_named_by_property_path() {
        let good = serde_json::json!({"name": "prod", "commands": ["./deploy.sh"], "gates": {
            "deploymentWindow": {"cron": "* * 9-16 ? * MON-FRI", "timeZone": "Europe/Berlin"},
            "alarms": ["errors", "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:latency"],
            "bakeTimeMinutes": 30
        }});
        assert!(failures_of(good).is_empty());
        let bad = serde_json::json!({"name": "prod", "commands": ["./deploy.sh"], "gates": {
            "deploymentWindow": {"cron": "0 9 * * MON-FRI", "timeZone": "CET"},
            "alarms": ["a", "b", "c", "d", "arn:aws:sns:eu-west-1:123456789012:topic", ""],
            "bakeTimeMinutes": 0
        }});
        assert_eq!(
            failures_of(bad),
            vec![
                "deployments[1].gates.deploymentWindow.cron",
                "deployments[1].gates.deploymentWindow.timeZone",
                "deployments[1].gates.alarms",
                "deployments[1].gates.alarms[4]",
                "deployments[1].gates.alarms[5]",
                "deployments[1].gates.bakeTimeMinutes"
            ]
        );
        let bake_alone = serde_json::json!({"name": "prod", "commands": ["./deploy.sh"],
            "gates": {"bakeTimeMinutes": 30}});
        assert_eq!(
            failures_of(bake_alone),
            vec!["deployments[1].gates.bakeTimeMinutes"]
        );
    }

    #[test]
    fn production_rolls_back_unless_told_otherwise() {
        let mut deployment: Deployment = serde_json::from_value(serde_json::json!({
            "name": "prod", "commands": ["./deploy.sh"], "production": true
        }))
        .unwrap();
        assert!(rolls_back(&deployment));
        deployment.rollback_on_failure = Some(false);
        assert!(!rolls_back(&deployment));
        deployment.production = None;
        deployment.rollback_on_failure = None;
        assert!(!rolls_back(&deployment));
    }
}
