//! Logging to stderr (stdout belongs to the protocol in stdio mode), at the configured level;
//! `VMCP_LOG` (a tracing filter such as `debug` or `vmcp_gateway=trace`) overrides it.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(level: &str) {
    let filter = std::env::var("VMCP_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
