//! `bf kibana import`: bf's data views and dashboard (or a user's export)
//! into Kibana, and what Kibana said of each object.

use anyhow::Context as _;
use bf_sinks::kibana::{self, KibanaConfig, SavedObjects};

use super::Outcome;
use super::es::auth;
use crate::args::{KibanaCommand, KibanaImportArgs};
use crate::present::Printer;

pub async fn run(command: KibanaCommand, printer: &Printer) -> anyhow::Result<Outcome> {
    match command {
        KibanaCommand::Import(args) => import(&args, printer).await,
    }
}

async fn import(args: &KibanaImportArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let mut config = KibanaConfig::new(&args.url)?;
    config.auth = auth(&args.access);
    config.ca_cert = args.access.ca_cert.clone();
    config.timeout = std::time::Duration::from_secs_f64(args.access.es_timeout);
    let objects = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            SavedObjects::parse(&text, &path.display().to_string())?
        }
        None => SavedObjects::bundled().with_index_prefix(&args.access.index_prefix),
    };
    let report = kibana::import(&config, &objects).await?;
    if printer.json() {
        printer.json_value(&report)?;
    } else {
        for error in &report.errors {
            printer.warn(&format!("not imported: {error}"));
        }
        let what = match &args.file {
            Some(path) => path.display().to_string(),
            None => "bf's data views and dashboard".to_string(),
        };
        let origin = config.origin();
        printer.summary(&if !report.success {
            format!(
                "Kibana at {origin} imported {} of {} saved objects from {what}; {} refused (listed above)",
                report.success_count,
                objects.objects().len(),
                report.errors.len(),
            )
        } else if args.file.is_none() {
            format!(
                "imported {} saved objects ({what}) into Kibana at {origin}; open {origin}/app/dashboards#/view/bf-signals-dashboard",
                report.success_count,
            )
        } else {
            format!(
                "imported {} saved objects from {what} into Kibana at {origin}",
                report.success_count
            )
        });
    }
    Ok(if report.success {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}
