use bf_lake::LakeError;
use datafusion::error::DataFusionError;

/// Errors of strategies and signal generation; each names the file and
/// strategy at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum SignalsError {
    #[error("strategies file {path}: {message}")]
    File { path: String, message: String },

    #[error("strategies file {path}: strategy {name:?}: {message}")]
    Strategy {
        path: String,
        name: String,
        message: String,
    },

    #[error("the lake has no features table yet")]
    NoFeatures,

    #[error(transparent)]
    Lake(#[from] LakeError),

    #[error("signal query failed")]
    Query(#[source] DataFusionError),
}

impl SignalsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoFeatures => {
                Some("build features first: bf features build --symbol-list demo_small".into())
            }
            Self::Strategy { .. } | Self::File { .. } => {
                Some("see config/strategies.toml for the rules and their parameters".into())
            }
            Self::Lake(e) => e.hint(),
            Self::Query(_) => None,
        }
    }
}
