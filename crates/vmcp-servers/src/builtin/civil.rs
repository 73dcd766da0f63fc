//! Civil time for the clock and notes servers: the workspace's one implementation, in
//! `vmcp_config::civil`.

pub use vmcp_config::civil::*;
