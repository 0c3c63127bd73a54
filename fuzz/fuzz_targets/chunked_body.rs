//! Chunked request bodies from publishers: decoded within the limit, never a panic.
#![no_main]

use halley::http::chunked::{decode, Chunked};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Chunked::Complete { body, consumed }) = decode(data, 4096) {
        assert!(body.len() <= 4096 && consumed <= data.len());
    }
});
