//! `bf config`: every setting, its effective value and where it came from.

use std::collections::BTreeMap;

use clap::parser::ValueSource;
use clap::{Arg, CommandFactory};
use serde::Serialize;

use super::{Context, Outcome};
use crate::args::Cli;

#[derive(Debug, Serialize)]
struct Setting {
    variable: String,
    value: String,
    origin: &'static str,
    used_by: String,
}

/// Variables bf reads that are not flags (object-store credentials and the like).
const OTHER_VARIABLES: &[&str] = &[
    "BF_LOG",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONDITIONAL_PUT",
    "AWS_ALLOW_HTTP",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
];

pub fn run(context: &Context) -> anyhow::Result<Outcome> {
    let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
    collect(&Cli::command(), "", &mut settings, context);
    for variable in OTHER_VARIABLES {
        if let Ok(value) = std::env::var(variable) {
            settings.insert(
                variable.to_string(),
                Setting {
                    variable: variable.to_string(),
                    value: mask(variable, &value),
                    origin: env_origin(variable, context),
                    used_by: "environment".into(),
                },
            );
        }
    }
    let printer = &context.printer;
    let settings: Vec<Setting> = settings.into_values().collect();
    if printer.json() {
        printer.json_value(&settings)?;
    } else {
        let rows = settings
            .iter()
            .map(|s| {
                vec![
                    s.variable.clone(),
                    s.value.clone(),
                    s.origin.to_string(),
                    s.used_by.clone(),
                ]
            })
            .collect();
        printer.table(&["variable", "value", "from", "used by"], &[], rows)?;
    }
    Ok(Outcome::Success)
}

/// Walks every (sub)command's flags that read an environment variable.
fn collect(
    command: &clap::Command,
    path: &str,
    settings: &mut BTreeMap<String, Setting>,
    context: &Context,
) {
    for arg in command.get_arguments() {
        let Some(variable) = arg.get_env().and_then(|v| v.to_str()) else {
            continue;
        };
        let flag = format!("--{}", arg.get_long().unwrap_or(arg.get_id().as_str()));
        let used_by = if arg.is_global_set() || path.is_empty() {
            "all".to_string()
        } else {
            format!("{path} {flag}")
        };
        if let Some(existing) = settings.get_mut(variable) {
            if !existing.used_by.contains(&used_by) && existing.used_by != "all" {
                existing.used_by.push_str(&format!(", {used_by}"));
            }
            continue;
        }
        let (value, origin) = effective(arg, variable, context);
        // An unset secret says so: "****" would read as set.
        let value = match value {
            Some(value) => mask(variable, &value),
            None => "(unset)".to_string(),
        };
        settings.insert(
            variable.to_string(),
            Setting {
                variable: variable.to_string(),
                value,
                origin,
                used_by,
            },
        );
    }
    for sub in command.get_subcommands() {
        let sub_path = if path.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{path} {}", sub.get_name())
        };
        collect(sub, &sub_path, settings, context);
    }
}

/// The value in effect (`None`: unset) and where it came from.
fn effective(arg: &Arg, variable: &str, context: &Context) -> (Option<String>, &'static str) {
    // Global flags given on this command line win over everything; the matches
    // of `bf config` hold no other command's flags.
    if arg.is_global_set()
        && context.matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
    {
        let value = context
            .matches
            .get_raw(arg.get_id().as_str())
            .and_then(|mut v| v.next())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_else(|| "true".into());
        return (Some(value), "command line");
    }
    if let Ok(value) = std::env::var(variable) {
        return (Some(value), env_origin(variable, context));
    }
    let default = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(",");
    ((!default.is_empty()).then_some(default), "default")
}

fn env_origin(variable: &str, context: &Context) -> &'static str {
    if context.dotenv_keys.contains(variable) {
        ".env"
    } else {
        "environment"
    }
}

/// Secrets show only that they are set; URLs lose any password; librdkafka
/// properties keep their keys and lose secret values.
fn mask(variable: &str, value: &str) -> String {
    let upper = variable.to_ascii_uppercase();
    if upper == "BF_KAFKA_PROPERTIES" {
        return value
            .split([',', '\n'])
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret(&key.to_ascii_uppercase()) => format!("{key}=****"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
    }
    if is_secret(&upper) {
        return format!("****{}", if value.is_empty() { " (empty)" } else { "" });
    }
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("****"));
            url.to_string()
        }
        _ => value.to_string(),
    }
}

fn is_secret(upper: &str) -> bool {
    [
        "SECRET",
        "PASSWORD",
        "TOKEN",
        "ACCESS_KEY",
        "API_KEY",
        "KEY.PEM",
        "JAAS",
    ]
    .iter()
    .any(|s| upper.contains(s))
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn secrets_and_url_passwords_are_masked() {
        assert_eq!(mask("AWS_SECRET_ACCESS_KEY", "abc"), "****");
        assert_eq!(mask("AWS_ACCESS_KEY_ID", "AKIA"), "****");
        assert_eq!(
            mask("BF_LAKE", "s3://user:pw@host/bucket"),
            "s3://user:****@host/bucket"
        );
        assert_eq!(mask("BF_LAKE", "./lake"), "./lake");
        assert_eq!(
            mask(
                "BF_KAFKA_PROPERTIES",
                "security.protocol=SASL_SSL,sasl.password=pw,ssl.key.pem=x"
            ),
            "security.protocol=SASL_SSL,sasl.password=****,ssl.key.pem=****"
        );
    }
}
