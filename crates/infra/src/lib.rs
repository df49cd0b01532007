//! `bf infra start | stop | status | logs` (issue 16). Empty until it lands:
//! compose over `infra/docker-compose.yml`, health checks per service, and a
//! bootstrap that reuses the sinks' and the cluster's own code (bucket, topics,
//! index templates, dashboard) rather than repeating it.
