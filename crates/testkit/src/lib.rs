//! bf's test kit: servers that speak the wire formats bf's sources and sinks
//! talk to, with faults on demand, for the test suites and `bf-bench`. Only
//! ever a dev-dependency (or a dependency of `bf-bench`): none of it ships in
//! the `bf` binary.

pub mod es_proxy;
pub mod yahoo_server;
