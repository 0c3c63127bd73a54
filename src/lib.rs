//! Halley, a Comet server. (Tour written once the modules settle.)
pub mod admin;
pub mod bus;
pub mod channel;
pub mod cli;
pub mod config;
pub mod http;
pub mod json;
pub mod net;
pub mod server;
pub mod stats;
pub mod subscribe;
pub mod timer;
pub mod transport;
pub mod units;
pub mod worker;
