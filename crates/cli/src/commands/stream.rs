//! `bf stream publish | consume | status`: the lake's changes through Kafka
//! into Elasticsearch.

use std::time::Duration;

use bf_core::error_chain;
use bf_core::tables::{FEATURES, OHLCV, SIGNALS, TableSpec};
use bf_lake::Lake;
use bf_sinks::elasticsearch::EsClient;
use bf_sinks::kafka::{self, ConsumeRequest, FollowRound, KafkaConfig, PublishReport};

use super::{Outcome, stop_requested};
use crate::args::{GlobalArgs, KafkaArgs, MirroredTable, StreamCommand, StreamSink};
use crate::present::{Printer, count_text, seconds_text};

pub async fn run(
    command: StreamCommand,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    match command {
        StreamCommand::Publish(args) => {
            let lake = Lake::open(&global.lake)?;
            let config = config(&args.kafka)?;
            let tables = specs(&args.tables);
            if !args.follow {
                let report = kafka::publish(&lake, &config, &tables).await?;
                print_publish(&report, &config, printer)?;
                return Ok(Outcome::Success);
            }
            let mut output = Ok(());
            let poll = Duration::from_secs_f64(args.poll);
            kafka::publish_follow(&lake, &config, &tables, poll, stop_requested(), |round| {
                let shown = match round {
                    // Following, a round that sent nothing says nothing.
                    FollowRound::Published(report) if sent(report) == 0 => Ok(()),
                    FollowRound::Published(report) => print_publish(report, &config, printer),
                    FollowRound::Failed { error, retry_in } => {
                        printer.warn(&format!(
                            "{}; trying again in {}",
                            error_chain(error),
                            seconds_text(retry_in)
                        ));
                        Ok(())
                    }
                };
                if output.is_ok() {
                    output = shown;
                }
            })
            .await?;
            output?;
            Ok(Outcome::Success)
        }
        StreamCommand::Consume(args) => {
            let StreamSink::Elasticsearch = args.sink;
            let config = config(&args.kafka)?;
            let es = EsClient::new(super::es::config_for(&args.es)?)?;
            let request = ConsumeRequest {
                group: args.group.clone(),
                instance: args.instance.clone(),
                tables: specs(&args.tables),
                follow: args.follow,
                batch_messages: args.batch as usize,
            };
            let report = kafka::consume(&config, &es, &request, stop_requested()).await?;
            if printer.json() {
                printer.json_value(&report)?;
            } else {
                for error in &report.errors {
                    printer.warn(error);
                }
                printer.summary(&format!(
                    "consumed {} messages of group {}: {} documents indexed, {} deleted, {} superseded in their batch, {} dead-lettered, {} refused; {} commits",
                    count_text(report.messages),
                    args.group,
                    count_text(report.indexed),
                    count_text(report.deleted),
                    count_text(report.superseded),
                    count_text(report.dead_lettered),
                    count_text(report.rejected),
                    report.commits,
                ));
            }
            Ok(if report.dead_lettered + report.rejected == 0 {
                Outcome::Success
            } else {
                Outcome::SomeFailed
            })
        }
        StreamCommand::Status(args) => {
            let lake = Lake::open(&global.lake)?;
            let config = config(&args.kafka)?;
            let topics = kafka::status(&lake, &config, &args.group, &specs(&args.tables)).await?;
            if printer.json() {
                printer.json_value(&topics)?;
                return Ok(Outcome::Success);
            }
            let version = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| v.to_string());
            let rows = topics
                .iter()
                .map(|t| {
                    let end: i64 = t.partitions.iter().map(|p| p.end_offset).sum();
                    let committed: i64 = t.partitions.iter().filter_map(|p| p.committed).sum();
                    let lag: i64 = t.partitions.iter().map(|p| p.lag).sum();
                    vec![
                        t.topic.clone(),
                        version(t.lake_version),
                        version(t.published_version),
                        t.partitions.len().to_string(),
                        count_text(end as usize),
                        count_text(committed as usize),
                        count_text(lag as usize),
                    ]
                })
                .collect();
            let numbers = ["partitions", "end offsets", "committed", "lag"];
            printer.table(
                &[
                    "topic",
                    "lake version",
                    "published version",
                    "partitions",
                    "end offsets",
                    "committed",
                    "lag",
                ],
                &numbers,
                rows,
            )?;
            printer.summary(&format!("group {} at {}", args.group, config.brokers));
            Ok(Outcome::Success)
        }
    }
}

fn config(args: &KafkaArgs) -> anyhow::Result<KafkaConfig> {
    let mut config = KafkaConfig::new(&args.brokers);
    config.topic_prefix = args.topic_prefix.clone();
    config.partitions = args.partitions;
    config.replication = args.replication;
    if let Some(properties) = &args.properties {
        config.properties = kafka::parse_properties(properties)?;
    }
    Ok(config)
}

fn specs(tables: &[MirroredTable]) -> Vec<&'static TableSpec> {
    tables
        .iter()
        .map(|table| match table {
            MirroredTable::Signals => &SIGNALS,
            MirroredTable::Features => &FEATURES,
            MirroredTable::Ohlcv => &OHLCV,
        })
        .collect()
}

fn sent(report: &PublishReport) -> usize {
    report.tables.iter().map(|t| t.upserts + t.deletes).sum()
}

fn print_publish(
    report: &PublishReport,
    config: &KafkaConfig,
    printer: &Printer,
) -> anyhow::Result<()> {
    if printer.json() {
        return Ok(printer.json_value(report)?);
    }
    let sent = sent(report);
    let versions: Vec<String> = report
        .tables
        .iter()
        .filter(|t| t.upserts + t.deletes > 0)
        .map(|t| {
            let rate = (t.upserts + t.deletes) as f64 / t.seconds.max(1e-9);
            format!(
                "{} {} upserts + {} deletes up to version {} ({}/s)",
                t.topic,
                count_text(t.upserts),
                count_text(t.deletes),
                t.to_version.unwrap_or_default(),
                count_text(rate as usize)
            )
        })
        .collect();
    printer.summary(&if sent == 0 {
        format!("kafka: nothing new to publish to {}", config.brokers)
    } else {
        format!("kafka: {}; every message acknowledged", versions.join("; "))
    });
    Ok(())
}
