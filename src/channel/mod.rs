//! Channels: what a name may be (`name`), one published event encoded once in every
//! frame form (`event`), the bounded history kept per channel (`history`), and each
//! loop's index of channels and the connections waiting on them (`index`), and lists
//! of channel patterns (`pattern`).

pub mod event;
pub mod history;
pub mod index;
pub mod name;
pub mod pattern;

pub use event::Event;
pub use history::History;
pub use index::ChannelIndex;
pub use name::{is_valid_name, MAX_NAME_BYTES};
pub use pattern::ChannelPatterns;
