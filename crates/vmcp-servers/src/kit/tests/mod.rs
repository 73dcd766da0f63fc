//! In-process tests of the kit: a real [`Server`](super::Server) served over an in-memory
//! duplex, driven line by line like a client would.

pub(crate) mod harness;
mod legacy;
mod modern;
