//! Client WebSocket frames from strangers: read frame after frame within the limit,
//! never a panic, always moving forward, and a text message is always UTF-8.
#![no_main]

use halley::websocket::read::{Incoming, Reader, TextAt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data.to_vec();
    let mut reader = Reader::new();
    let mut at = 0;
    while let Ok(Some((incoming, used))) = reader.read(&mut input[at..], 4096) {
        assert!(used > 0 && at + used <= input.len());
        match incoming {
            Incoming::Text(TextAt::Input(range)) => {
                let text = &input[at + range.start..at + range.end];
                assert!(text.len() <= 4096 && std::str::from_utf8(text).is_ok());
            }
            Incoming::Text(TextAt::Assembled) => {
                assert!(reader.assembled().len() <= 4096);
                assert!(std::str::from_utf8(reader.assembled()).is_ok());
                reader.clear_assembled();
            }
            _ => {}
        }
        at += used;
    }
});
