//! `bf cluster scheduler | executor | status`, and the `--cluster` side of
//! `bf features build`, `bf signals generate` and `bf sql`.

use bf_cluster::{
    Cluster, ClusterStatus, ExecutorOptions, SchedulerAddress, SchedulerApi, SchedulerOptions,
    WriteOutcome, run_executor, run_scheduler,
};

use super::{Outcome, stop_requested};
use crate::args::{ClusterArg, ClusterCommand, ClusterStatusArgs, ExecutorArgs, SchedulerArgs};
use crate::present::{Printer, count_text};

pub async fn run(command: ClusterCommand, printer: &Printer) -> anyhow::Result<Outcome> {
    match command {
        ClusterCommand::Scheduler(args) => scheduler(args, printer).await,
        ClusterCommand::Executor(args) => executor(args, printer).await,
        ClusterCommand::Status(args) => status(args, printer).await,
    }
}

/// The cluster a command was pointed at, connected; `None` runs embedded.
pub async fn connect(arg: &ClusterArg) -> anyhow::Result<Option<Cluster>> {
    match arg.scheduler()? {
        Some(address) => Ok(Some(Cluster::connect(address).await?)),
        None => Ok(None),
    }
}

async fn scheduler(args: SchedulerArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let options = SchedulerOptions {
        bind: args.bind,
        executor_timeout_seconds: args.executor_timeout,
        flight_proxy: args.flight_proxy,
    };
    let stop = stop_requested();
    printer.summary(&format!(
        "scheduler on df://{bind}; REST API http://{bind}/api/state; Ctrl-C stops it",
        bind = args.bind
    ));
    tokio::select! {
        ran = run_scheduler(&options) => ran?,
        () = stop => printer.summary("scheduler stopped"),
    }
    Ok(Outcome::Success)
}

async fn executor(args: ExecutorArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let options = ExecutorOptions {
        scheduler: SchedulerAddress::parse(&args.scheduler)?,
        slots: args.slots,
        work_dir: args.work_dir.map(|p| p.display().to_string()),
        bind_host: args.bind_host,
        advertise_host: args.advertise_host,
        flight_port: args.flight_port,
        grpc_port: args.grpc_port,
        connect_timeout_seconds: args.connect_timeout,
        heartbeat_seconds: args.heartbeat,
    };
    // Ballista's executor handles Ctrl-C and SIGTERM itself: it tells the
    // scheduler it is leaving, lets running tasks finish, then returns.
    run_executor(&options, |started| {
        printer.summary(&format!(
            "executor {} for {}: {} slots, flight port {}, gRPC port {}, work folder {}; Ctrl-C stops it",
            started.id,
            options.scheduler,
            started.slots,
            started.flight_port,
            started.grpc_port,
            started.work_dir.as_deref().unwrap_or("-"),
        ));
    })
    .await?;
    printer.summary("executor stopped");
    Ok(Outcome::Success)
}

async fn status(args: ClusterStatusArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let address = args.cluster.scheduler()?.ok_or_else(|| {
        anyhow::anyhow!("name the scheduler: --cluster df://HOST:PORT or BF_CLUSTER")
    })?;
    let mut status = SchedulerApi::new(address).status().await?;
    status.jobs.truncate(args.jobs);
    if printer.json() {
        printer.json_value(&status)?;
        return Ok(Outcome::Success);
    }
    print_status(&status, printer)?;
    Ok(Outcome::Success)
}

fn print_status(status: &ClusterStatus, printer: &Printer) -> anyhow::Result<()> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let executors = status
        .executors
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                format!("{}:{}", e.host, e.port),
                e.slots.to_string(),
                e.last_seen.map_or_else(
                    || "-".into(),
                    |at_ms| format!("{:.1} s ago", now_ms.saturating_sub(at_ms) as f64 / 1000.0),
                ),
            ]
        })
        .collect();
    printer.table(
        &["executor", "address", "slots", "last heartbeat"],
        &["slots"],
        executors,
    )?;
    let jobs = status
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.job_id.clone(),
                j.job_name.clone(),
                j.job_status.clone(),
                format!("{}/{}", j.completed_stages, j.num_stages),
                format!("{}%", j.percent_complete),
            ]
        })
        .collect();
    if !status.jobs.is_empty() {
        printer.table(
            &["job", "name", "status", "stages", "done"],
            &["stages", "done"],
            jobs,
        )?;
    }
    printer.summary(&format!(
        "scheduler {} (Ballista {}): {} executors, {} slots",
        status.scheduler,
        status.version,
        status.executors.len(),
        status
            .executors
            .iter()
            .map(|e| e.slots as usize)
            .sum::<usize>()
    ));
    Ok(())
}

/// One line on what a cluster job committed and who wrote it.
pub fn commit_text(commit: &WriteOutcome) -> String {
    let shares: Vec<String> = commit
        .by_executor
        .iter()
        .map(|(executor, share)| {
            format!(
                "{executor}: {} rows in {} files",
                count_text(share.rows as usize),
                share.files
            )
        })
        .collect();
    format!(
        "{} rows in {} files, {} files replaced, version {} ({})",
        count_text(commit.rows_written as usize),
        commit.files_added,
        commit.files_removed,
        commit.version,
        if shares.is_empty() {
            "no executor wrote rows".to_string()
        } else {
            shares.join("; ")
        }
    )
}
