//! Every file in `examples/` validates, so the documentation cannot drift from the code.

use std::path::Path;

#[test]
fn example_files_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let toml = dir.join("vmcp.toml");
    let cfg = vmcp_config::GatewayConfig::load(&toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.http.host, "127.0.0.1");
    let servers = dir.join("servers.json");
    let file = vmcp_config::ServersFile::load(&servers).unwrap_or_else(|e| panic!("{e}")).expect("exists");
    assert_eq!(file.raw.servers.len(), 4);
    assert_eq!(file.servers.len(), 3, "disabled entries are not mounted");
}
