//! bf's test kit: servers that speak the wire formats bf's sources and sinks
//! talk to, with faults on demand, for the test suites and `bf-bench`. Only
//! ever a dev-dependency (or a dependency of `bf-bench`): none of it ships in
//! the `bf` binary.

pub mod es_proxy;
pub mod kafka_broker;
pub mod kibana_stub;
mod serve;
pub mod yahoo_server;

/// (variable, URL) of each Elasticsearch-API server that `scripts/test`
/// starts (osmem-server, noida-db): Elasticsearch tests run against both.
pub fn elasticsearch_servers() -> Vec<(&'static str, String)> {
    ["BF_TEST_ES_OSMEM_URL", "BF_TEST_ES_NOIDA_URL"]
        .into_iter()
        .map(|variable| {
            let url = std::env::var(variable).unwrap_or_else(|_| {
                panic!("{variable} is not set: run scripts/test, which starts the Elasticsearch test servers")
            });
            (variable, url)
        })
        .collect()
}

/// The Kafka broker that `scripts/test` starts (noida-db's), `host:port`.
pub fn kafka_brokers() -> String {
    std::env::var("BF_TEST_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "BF_TEST_KAFKA_BROKERS is not set: run scripts/test, which starts the Kafka test broker"
        )
    })
}
