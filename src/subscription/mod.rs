//! Subscriptions: reading a `GET /sub/...` request into what it asks for (`request`)
//! and the state of one subscription on its connection, with the catch-up from history
//! that every transport shares (`state`).

pub mod request;
pub mod state;

pub use request::{parse, HeadHints, SubscribeError, SubscribeRequest, Transport};
pub use state::{SubChannel, Subscription};
