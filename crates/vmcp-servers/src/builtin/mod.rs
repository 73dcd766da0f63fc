//! Servers built into vmcp, useful offline with no configuration, served over stdio by
//! `vmcp builtin NAME`. All of them speak both eras.
//!
//! - `clock`: the current time and conversions between UTC offsets.
//! - `notes`: a persistent note store (`$VMCP_NOTES_DIR`, default `./notes`), also as resources.
//! - `utils`: echo, SHA-256, base64, UUIDs and a calculator.

mod calc;
pub(crate) mod civil;
mod clock;
pub mod notes;
mod sha256;
mod utils;

#[cfg(test)]
mod tests;

use crate::kit::{self, Server, Shutdown};

/// The names `run_builtin` accepts.
pub const BUILTIN_NAMES: &[&str] = &["clock", "notes", "utils"];

/// The built-in server `name`, ready to serve. `NotFound` for an unknown name.
pub fn server(name: &str) -> std::io::Result<Server> {
    match name {
        "clock" => Ok(clock::server()),
        "notes" => notes::server(),
        "utils" => Ok(utils::server()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no built-in server `{name}` (built-ins: {})", BUILTIN_NAMES.join(", ")),
        )),
    }
}

/// Serve the built-in `name` on stdin/stdout until stdin closes, on a runtime of its own.
/// Returns an error of kind `NotFound` for an unknown name.
pub fn run_builtin(name: &str) -> std::io::Result<()> {
    let server = server(name)?;
    match kit::run_stdio(server)? {
        Shutdown::Eof => Ok(()),
        Shutdown::Exit(code) => {
            Err(std::io::Error::other(format!("built-in `{name}` stopped with code {code}")))
        }
    }
}
