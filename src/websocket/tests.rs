//! The codec against byte strings: RFC 6455's own examples, every length form, masking,
//! fragmentation, control frames, every malformed case with its close code, and
//! property tests that random bytes never panic and that what a client frames is read
//! back whole however it is cut.

use proptest::prelude::*;

use super::close;
use super::handshake::{self, HandshakeError};
use super::read::{Incoming, Reader, TextAt, Violation};
use super::write;
use super::Opcode;

const MAX: usize = 1 << 16;

/// A client frame: `first` byte as given, masked with `mask`, the length in its
/// shortest form unless `long` forces the 64-bit one.
fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = payload.len();
    out.push(first);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads every frame of `input`; returns the texts, the other frames and the error.
fn read_all(input: &mut [u8], max: usize) -> (Vec<String>, Vec<Incoming>, Option<Violation>) {
    let mut reader = Reader::new();
    let (mut texts, mut others) = (Vec::new(), Vec::new());
    let mut at = 0;
    loop {
        match reader.read(&mut input[at..], max) {
            Ok(Some((incoming, used))) => {
                match &incoming {
                    Incoming::Text(TextAt::Input(range)) => texts.push(
                        String::from_utf8(input[at + range.start..at + range.end].to_vec())
                            .unwrap(),
                    ),
                    Incoming::Text(TextAt::Assembled) => {
                        texts.push(String::from_utf8(reader.assembled().to_vec()).unwrap());
                        reader.clear_assembled();
                    }
                    Incoming::Fragment => {}
                    other => others.push(other.clone()),
                }
                at += used;
            }
            Ok(None) => return (texts, others, None),
            Err(violation) => return (texts, others, Some(violation)),
        }
    }
}

#[test]
fn the_rfc_accept_key() {
    // RFC 6455 section 1.3.
    let key = b"dGhlIHNhbXBsZSBub25jZQ==";
    assert_eq!(&handshake::accept_key(key), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(
        handshake::accept(Some(key), Some(b"13")).unwrap(),
        handshake::accept_key(key)
    );
}

#[test]
fn handshake_refusals() {
    let key: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";
    /// A key, a version, and the refusal they get.
    type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, HandshakeError);
    let table: &[Case] = &[
        (Some(key), None, HandshakeError::BadVersion),
        (Some(key), Some(b"8"), HandshakeError::BadVersion),
        (Some(key), Some(b"13, 8"), HandshakeError::BadVersion),
        (None, Some(b"13"), HandshakeError::BadKey),
        (Some(b""), Some(b"13"), HandshakeError::BadKey),
        (Some(b"not base64!!"), Some(b"13"), HandshakeError::BadKey),
        // 15 and 17 bytes in base64: a key is 16.
        (
            Some(b"AAAAAAAAAAAAAAAAAAAA"),
            Some(b"13"),
            HandshakeError::BadKey,
        ),
        (
            Some(b"AAAAAAAAAAAAAAAAAAAAAAA="),
            Some(b"13"),
            HandshakeError::BadKey,
        ),
    ];
    for (key, version, expected) in table {
        assert_eq!(
            handshake::accept(*key, *version),
            Err(*expected),
            "{key:?} {version:?}"
        );
    }
}

#[test]
fn the_subprotocol_offered() {
    // (Upgrade and Connection are read with the head: http::request's tests.)
    assert!(handshake::offers_subprotocol(Some(b"chat, halley.v1")));
    assert!(!handshake::offers_subprotocol(Some(b"Halley.V1")));
    assert!(!handshake::offers_subprotocol(None));
}

#[test]
fn the_rfc_frames() {
    // RFC 6455 section 5.7: a masked "Hello", and "Hello" in two fragments.
    let mut masked = vec![
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(read_all(&mut masked, MAX).0, ["Hello"]);
    let mut fragmented = client_frame(0x01, b"Hel", [1, 2, 3, 4]);
    fragmented.extend(client_frame(0x80, b"lo", [5, 6, 7, 8]));
    assert_eq!(read_all(&mut fragmented, MAX).0, ["Hello"]);
    // The server's own frames: "Hello" unmasked, a 256-byte and a 64 KiB head.
    let mut out = Vec::new();
    write::push_text(&mut out, b"Hello");
    assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
    out.clear();
    write::push_head(&mut out, Opcode::Text, 256);
    assert_eq!(out, [0x81, 0x7E, 0x01, 0x00]);
    out.clear();
    write::push_head(&mut out, Opcode::Text, 65536);
    assert_eq!(out, [0x81, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn every_length_form_is_read() {
    for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
        let text = "x".repeat(len);
        let mut frame = client_frame(0x81, text.as_bytes(), [9, 8, 7, 6]);
        let head = frame.len() - len;
        assert_eq!(
            head,
            6 + if len < 126 {
                0
            } else if len < 65536 {
                2
            } else {
                8
            }
        );
        let (texts, _, error) = read_all(&mut frame, 1 << 20);
        assert_eq!((texts, error), (vec![text], None), "length {len}");
    }
}

#[test]
fn a_frame_cut_anywhere_waits_for_the_rest() {
    let frame = client_frame(0x81, "héllo, wörld".as_bytes(), [0xAA, 0xBB, 0xCC, 0xDD]);
    for cut in 0..frame.len() {
        let mut part = frame[..cut].to_vec();
        assert_eq!(Reader::new().read(&mut part, MAX), Ok(None), "cut at {cut}");
    }
}

#[test]
fn control_frames() {
    let mut input = client_frame(0x89, b"are you there", [1, 1, 1, 1]);
    input.extend(client_frame(0x8A, b"", [2, 2, 2, 2]));
    let mut closing = vec![0x03, 0xE8];
    closing.extend_from_slice("bye ✓".as_bytes());
    input.extend(client_frame(0x88, &closing, [3, 3, 3, 3]));
    input.extend(client_frame(0x88, b"", [4, 4, 4, 4]));
    let (texts, others, error) = read_all(&mut input, MAX);
    assert!(texts.is_empty() && error.is_none());
    assert_eq!(others.len(), 4);
    assert!(matches!(&others[0], Incoming::Ping(range) if range.len() == 13));
    assert_eq!(others[1], Incoming::Pong);
    assert_eq!(others[2], Incoming::Close(Some(1000)));
    assert_eq!(others[3], Incoming::Close(None));
    // A control frame between the fragments of a message is allowed.
    let mut between = client_frame(0x01, b"a", [1, 2, 3, 4]);
    between.extend(client_frame(0x89, b"p", [1, 2, 3, 4]));
    between.extend(client_frame(0x80, b"b", [1, 2, 3, 4]));
    let (texts, others, error) = read_all(&mut between, MAX);
    assert_eq!(
        (texts, others.len(), error),
        (vec!["ab".to_string()], 1, None)
    );
}

#[test]
fn every_malformed_case_has_its_close_code() {
    let m = [1, 2, 3, 4];
    let big = vec![b'a'; 126];
    let table: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked", vec![0x81, 0x01, b'a'], close::PROTOCOL_ERROR),
        ("binary", client_frame(0x82, b"a", m), close::PROTOCOL_ERROR),
        ("rsv1", client_frame(0xC1, b"a", m), close::PROTOCOL_ERROR),
        ("rsv2", client_frame(0xA1, b"a", m), close::PROTOCOL_ERROR),
        ("rsv3", client_frame(0x91, b"a", m), close::PROTOCOL_ERROR),
        (
            "opcode 3",
            client_frame(0x83, b"a", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "opcode 11",
            client_frame(0x8B, b"a", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "fragmented ping",
            client_frame(0x09, b"a", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "ping over 125",
            client_frame(0x89, &big, m),
            close::PROTOCOL_ERROR,
        ),
        (
            "continuation first",
            client_frame(0x80, b"a", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "close of one byte",
            client_frame(0x88, b"\x03", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "close code 1005",
            client_frame(0x88, b"\x03\xED", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "close code 999",
            client_frame(0x88, b"\x03\xE7", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "close code 5000",
            client_frame(0x88, b"\x13\x88", m),
            close::PROTOCOL_ERROR,
        ),
        (
            "close reason not UTF-8",
            client_frame(0x88, b"\x03\xE8\xFF", m),
            close::NOT_UTF8,
        ),
        (
            "text not UTF-8",
            client_frame(0x81, b"\xC3", m),
            close::NOT_UTF8,
        ),
        (
            "over the limit",
            client_frame(0x81, &[b'a'; 65], m),
            close::TOO_BIG,
        ),
        (
            "64-bit length with the top bit",
            vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4],
            close::PROTOCOL_ERROR,
        ),
    ];
    for (what, mut input, code) in table {
        let error = read_all(&mut input, 64).2;
        assert_eq!(error.map(Violation::code), Some(code), "{what}");
    }
    // A text message begun inside another.
    let mut nested = client_frame(0x01, b"a", m);
    nested.extend(client_frame(0x01, b"b", m));
    assert_eq!(
        read_all(&mut nested, 64).2.map(Violation::code),
        Some(close::PROTOCOL_ERROR)
    );
    // Fragments that together pass the limit, refused at the one that passes it.
    let mut many = client_frame(0x01, &[b'a'; 40], m);
    many.extend(client_frame(0x80, &[b'a'; 40], m));
    assert_eq!(read_all(&mut many, 64).2, Some(Violation::TooBig));
    // UTF-8 cut between fragments is fine; invalid once whole is 1007.
    let mut split = client_frame(0x01, b"\xC3", m);
    split.extend(client_frame(0x80, b"\xA9", m));
    assert_eq!(read_all(&mut split, 64).0, ["é"]);
    let mut invalid = client_frame(0x01, b"\xC3", m);
    invalid.extend(client_frame(0x80, b"a", m));
    assert_eq!(read_all(&mut invalid, 64).2, Some(Violation::NotUtf8));
}

#[test]
fn an_oversized_frame_is_refused_from_its_head() {
    // Only the head of a 1 GiB frame has arrived: refused now, not buffered.
    let mut head = vec![0x81, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(Reader::new().read(&mut head, MAX), Err(Violation::TooBig));
}

#[test]
fn close_frames_the_server_sends() {
    let mut out = Vec::new();
    write::push_close(&mut out, close::GOING_AWAY, "shutting down");
    assert_eq!(&out[..4], [0x88, 15, 0x03, 0xE9]);
    assert_eq!(&out[4..], b"shutting down");
    out.clear();
    // A reason is cut to fit a control frame, at a character boundary.
    write::push_close(&mut out, close::NORMAL, &"é".repeat(100));
    assert_eq!(out[1] as usize, out.len() - 2);
    assert!(out.len() - 2 <= 125);
    assert!(std::str::from_utf8(&out[4..]).is_ok());
    out.clear();
    write::push_pong(&mut out, b"abc");
    assert_eq!(out, [0x8A, 3, b'a', b'b', b'c']);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(mut input in proptest::collection::vec(any::<u8>(), 0..300), max in 0usize..200) {
        // Every outcome is a frame, a wait or a violation; reading on from a frame
        // always moves forward.
        let mut reader = Reader::new();
        let mut at = 0;
        while let Ok(Some((_, used))) = reader.read(&mut input[at..], max) {
            prop_assert!(used > 0);
            at += used;
            reader.clear_assembled();
        }
    }

    #[test]
    fn what_a_client_frames_is_read_back_however_it_is_cut(
        texts in proptest::collection::vec("\\PC{0,40}", 1..6),
        fragments in 1usize..4,
        mask in any::<[u8; 4]>(),
    ) {
        let mut input = Vec::new();
        for text in &texts {
            let bytes = text.as_bytes();
            let size = bytes.len().div_ceil(fragments).max(1);
            let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![b""] } else { bytes.chunks(size).collect() };
            for (i, piece) in pieces.iter().enumerate() {
                let opcode = if i == 0 { 0x01 } else { 0x00 };
                let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
                input.extend(client_frame(fin | opcode, piece, mask));
            }
        }
        let (read, others, error) = read_all(&mut input, MAX);
        prop_assert_eq!(read, texts);
        prop_assert!(others.is_empty());
        prop_assert_eq!(error, None);
    }

    #[test]
    fn server_heads_use_the_shortest_form(len in 0usize..200_000) {
        let mut out = Vec::new();
        write::push_head(&mut out, Opcode::Text, len);
        let expected = if len < 126 { 2 } else if len < 65536 { 4 } else { 10 };
        prop_assert_eq!(out.len(), expected);
        prop_assert!(out.len() <= write::MAX_SERVER_HEAD);
    }
}
