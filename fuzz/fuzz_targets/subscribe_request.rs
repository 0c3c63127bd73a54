//! `GET /sub/...` targets from strangers: parsed or refused, never a panic.
#![no_main]

use halley::http::target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((path, query)) = target::split(data) {
        let channels = path.strip_prefix("/sub/").unwrap_or(path);
        let _ = halley::subscription::parse(channels, query, None, false, 16);
        let _ = halley::subscription::parse(channels, query, Some(data), true, 16);
    }
});
