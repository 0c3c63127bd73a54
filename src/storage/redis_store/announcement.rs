//! An announcement: what the publishing script sends every server, as bytes.
//!
//! ```text
//! halley1 e 42 live.scores\n<the data, any bytes>
//! halley1 c 43 live.scores\n
//! ```
//!
//! A version word, the kind (`e` an event, `c` a close marker), the id and the channel,
//! then a newline and the data. A channel name holds no space or newline (`channel::
//! name`), so the head splits unambiguously; the data is everything after it.
//! Anyone who may publish on the Redis may send anything here: a message that is not
//! an announcement is refused with a reason, never trusted.

use std::fmt;

/// The version word this code writes and reads.
const VERSION: &[u8] = b"halley1";

/// What an announcement carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Event,
    Close,
}

/// An announcement read from its bytes (borrowing them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement<'a> {
    pub kind: Kind,
    pub id: u64,
    pub channel: &'a str,
    pub data: &'a [u8],
}

/// Why bytes are not an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncementError {
    /// No newline ends the head.
    NoHead,
    /// Another version, or not ours at all.
    Version,
    /// The kind is neither `e` nor `c`, or a close carries data.
    Kind,
    /// The id is not a number from 1 up.
    Id,
    /// The channel is not a valid channel name.
    Channel,
}

impl fmt::Display for AnnouncementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnnouncementError::NoHead => "no head line",
            AnnouncementError::Version => "not a halley1 announcement",
            AnnouncementError::Kind => "an unknown kind",
            AnnouncementError::Id => "a bad id",
            AnnouncementError::Channel => "a bad channel name",
        })
    }
}

impl<'a> Announcement<'a> {
    /// Reads an announcement.
    pub fn parse(bytes: &'a [u8]) -> Result<Announcement<'a>, AnnouncementError> {
        let newline = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(AnnouncementError::NoHead)?;
        let (head, data) = (&bytes[..newline], &bytes[newline + 1..]);
        let mut words = head.split(|&b| b == b' ');
        if words.next() != Some(VERSION) {
            return Err(AnnouncementError::Version);
        }
        let kind = match words.next() {
            Some(b"e") => Kind::Event,
            Some(b"c") if data.is_empty() => Kind::Close,
            _ => return Err(AnnouncementError::Kind),
        };
        let id = words
            .next()
            .and_then(|w| std::str::from_utf8(w).ok())
            .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|w| w.parse::<u64>().ok())
            .filter(|&id| id >= 1)
            .ok_or(AnnouncementError::Id)?;
        let channel = words
            .next()
            .and_then(|w| std::str::from_utf8(w).ok())
            .filter(|name| crate::channel::is_valid_name(name))
            .ok_or(AnnouncementError::Channel)?;
        if words.next().is_some() {
            return Err(AnnouncementError::Channel);
        }
        Ok(Announcement {
            kind,
            id,
            channel,
            data,
        })
    }

    /// Its bytes, as the scripts write them (for tests and tools).
    pub fn to_bytes(&self) -> Vec<u8> {
        let kind = match self.kind {
            Kind::Event => "e",
            Kind::Close => "c",
        };
        let mut bytes = format!("halley1 {kind} {} {}\n", self.id, self.channel).into_bytes();
        bytes.extend_from_slice(self.data);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn events_and_close_markers_are_read() {
        let event = Announcement::parse(b"halley1 e 42 live.scores\n1-0\nand more").unwrap();
        assert_eq!(
            event,
            Announcement {
                kind: Kind::Event,
                id: 42,
                channel: "live.scores",
                data: b"1-0\nand more"
            }
        );
        let close = Announcement::parse(b"halley1 c 43 live.scores\n").unwrap();
        assert_eq!(
            (close.kind, close.id, close.data),
            (Kind::Close, 43, &b""[..])
        );
    }

    #[test]
    fn what_is_not_an_announcement_says_why() {
        let cases: [(&[u8], AnnouncementError); 9] = [
            (b"halley1 e 1 a", AnnouncementError::NoHead),
            (b"halley2 e 1 a\n", AnnouncementError::Version),
            (b"hello\n", AnnouncementError::Version),
            (b"halley1 x 1 a\n", AnnouncementError::Kind),
            (b"halley1 c 1 a\nnot empty", AnnouncementError::Kind),
            (b"halley1 e 0 a\n", AnnouncementError::Id),
            (b"halley1 e -1 a\n", AnnouncementError::Id),
            (b"halley1 e 99999999999999999999 a\n", AnnouncementError::Id),
            (b"halley1 e 1 a b\n", AnnouncementError::Channel),
        ];
        for (bytes, error) in cases {
            assert_eq!(
                Announcement::parse(bytes),
                Err(error),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(
            Announcement::parse(b"halley1 e 1 \n"),
            Err(AnnouncementError::Channel)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Announcement::parse(&bytes);
        }

        #[test]
        fn what_is_written_is_read_back(
            id in 1u64..u64::MAX,
            channel in "[a-z][a-z0-9._-]{0,40}",
            data in proptest::collection::vec(any::<u8>(), 0..200),
            close in any::<bool>(),
        ) {
            let (kind, data) = if close { (Kind::Close, &[][..]) } else { (Kind::Event, &data[..]) };
            let written = Announcement { kind, id, channel: &channel, data };
            let bytes = written.to_bytes();
            prop_assert_eq!(Announcement::parse(&bytes), Ok(written));
        }
    }
}
