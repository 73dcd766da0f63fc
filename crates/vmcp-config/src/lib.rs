//! vMCP's on-disk contract: the home layout, `vmcp.toml`, `registry/servers.json`, validation and atomic writes.
//!
//! Flow: file -> `Raw*` serde types -> environment overrides (`env`) -> `validate()` -> an immutable
//! snapshot (`GatewayConfig`, `ServerSpec`). Nothing here does network IO or spawns processes.

mod atomic;
pub mod civil;
mod error;
mod gateway;
mod home;
pub mod secrets;
mod servers;
mod size;

pub use atomic::write_atomic;
pub use error::ConfigError;
pub use gateway::{
    CacheConfig, GatewayConfig, HttpFront, LoggingConfig, MonitoringConfig, RawGatewayFile, WebSocketFront,
};
pub use home::Home;
pub use secrets::Secrets;
pub use servers::{
    Era, Naming, RawServer, RawServersFile, ServerSpec, ServersFile, Transport, expand_env,
    is_valid_server_id,
};
pub use size::parse_size;
