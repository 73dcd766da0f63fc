//! The built-in default: with no `servers.json`, vMCP mounts small servers built into its own
//! executable (`vmcp builtin NAME`), so `vmcp start` is useful offline on a fresh machine.

use std::collections::BTreeMap;

use vmcp_config::{Home, RawServer, RawServersFile};

pub fn servers(home: &Home) -> anyhow::Result<RawServersFile> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let notes_dir = home.data_dir().join("notes").to_string_lossy().into_owned();
    let server = |id: &str, name: &str, env: BTreeMap<String, String>| RawServer {
        id: id.into(),
        name: Some(name.into()),
        transport: "stdio".into(),
        command: Some(exe.clone()),
        args: vec!["builtin".into(), id.into()],
        environment: env,
        ..RawServer::default()
    };
    Ok(RawServersFile {
        version: "1.0.0".into(),
        servers: vec![
            server("clock", "Clock (built in)", BTreeMap::new()),
            server("notes", "Notes (built in)", BTreeMap::from([("VMCP_NOTES_DIR".to_owned(), notes_dir)])),
            server("utils", "Utilities (built in)", BTreeMap::new()),
        ],
    })
}
