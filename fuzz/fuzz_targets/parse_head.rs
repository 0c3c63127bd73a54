//! Request heads from strangers: never a panic, and a complete head within the limit.
#![no_main]

use halley::http::{parse_head, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Complete(head)) = parse_head(data, 8192) {
        assert!(head.len <= data.len() && head.len <= 8192);
        let _ = halley::http::target::split(head.target.of(data));
    }
});
