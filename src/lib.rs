//! Halley, a Comet server. (Tour written once the modules settle.)
pub mod bus;
pub mod channel;
pub mod config;
pub mod http;
pub mod json;
pub mod stats;
pub mod subscribe;
pub mod timer;
pub mod transport;
pub mod units;
