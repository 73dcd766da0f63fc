//! `vmcp builtin NAME`: serve one of the servers built into vmcp over stdio.

pub fn run(name: &str) -> anyhow::Result<()> {
    Err(crate::UsageError(format!("no built-in server `{name}`")).into())
}
