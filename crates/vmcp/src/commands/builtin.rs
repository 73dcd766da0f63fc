//! `vmcp builtin NAME`: serve one of the servers built into vmcp over stdio.

pub fn run(name: &str) -> anyhow::Result<()> {
    vmcp_servers::run_builtin(name).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            crate::UsageError(format!(
                "no built-in server `{name}` (have: {})",
                vmcp_servers::BUILTIN_NAMES.join(", ")
            ))
            .into()
        } else {
            anyhow::Error::from(e)
        }
    })
}
