//! `vmcp-fixture`: the fault-injecting MCP test server that vMCP's integration tests mount
//! behind the gateway. Flags: `vmcp-fixture --help` (see `vmcp_servers::fixture`).

fn main() {
    if let Err(e) = vmcp_servers::fixture::fixture_main() {
        eprintln!("vmcp-fixture: {e}");
        std::process::exit(1);
    }
}
