//! `df://HOST:PORT`: where a cluster's scheduler listens.

use std::fmt;

use crate::ClusterError;

/// Ballista's scheduler port.
pub const DEFAULT_PORT: u16 = 50050;

/// A scheduler's host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerAddress {
    pub host: String,
    pub port: u16,
}

impl SchedulerAddress {
    /// Parses `df://HOST[:PORT]` (`HOST[:PORT]` alone is accepted too).
    pub fn parse(text: &str) -> Result<Self, ClusterError> {
        let problem = |problem: &str| ClusterError::Address {
            address: text.to_string(),
            problem: problem.to_string(),
        };
        let rest = match text.split_once("://") {
            Some(("df", rest)) => rest,
            Some((scheme, _)) => {
                return Err(problem(&format!(
                    "the {scheme}:// scheme is not a cluster; write df://HOST:PORT"
                )));
            }
            None => text,
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(problem("write df://HOST:PORT"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| problem("the port is not a number from 1 to 65535"))?,
            ),
            None => (rest, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(problem("name the scheduler's host: df://HOST:PORT"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// The scheduler's gRPC and REST endpoint.
    pub fn http_url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }
}

impl fmt::Display for SchedulerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scheduler_address() {
        let parsed = SchedulerAddress::parse("df://node-1:50051").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("node-1", 50051));
        assert_eq!(
            SchedulerAddress::parse("localhost").unwrap().port,
            DEFAULT_PORT
        );
        assert_eq!(parsed.http_url(), "http://node-1:50051");
        assert_eq!(parsed.to_string(), "df://node-1:50051");
    }

    #[test]
    fn refuses_what_is_not_a_scheduler_address() {
        for bad in [
            "http://x:1",
            "df://",
            "df://x:0",
            "df://x:port",
            "df://:50050",
            "df://x/y",
        ] {
            let error = SchedulerAddress::parse(bad).unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
    }
}
