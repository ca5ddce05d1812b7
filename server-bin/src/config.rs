//! The configuration file: `manager-config`'s model, which `restartctl` reads too.

pub use manager_config::{ConfigError, DEFAULT_NAMESPACE, FileConfig};
