//! Where clients connect. Each front turns its transport's frames into calls to `dispatch` and
//! writes what a session sends back; none of them routes or decides policy.

pub mod control;
pub mod http;
pub mod stdio;
pub mod ws;
