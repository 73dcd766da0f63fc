//! Persona timestamps: RFC 3339 UTC with milliseconds (`2026-05-01T12:34:56.789Z`), from
//! `vmcp_config::civil`.

pub use vmcp_config::civil::now_utc_millis as now;
