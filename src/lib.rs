//! Halley, a Comet server. (Tour written once the modules settle.)
pub mod channel;
pub mod config;
pub mod http;
pub mod json;
pub mod timer;
pub mod units;
