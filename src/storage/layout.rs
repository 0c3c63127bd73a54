//! Where things are under `--data-dir`, and whether a directory can be trusted.
//!
//! ```text
//! DATA_DIR/FORMAT                         "halley data directory, format 1\n"
//! DATA_DIR/channels/{dir}/{first id:020}.log   a channel's segments
//! ```
//!
//! `{dir}` is the channel name with every byte outside `A-Z a-z 0-9 _ -` written
//! `%XX`, so `.`, `..` and `a:b` are ordinary names that never leave `channels/`; a
//! name whose escaped form would be too long for a file name is written `=` and its
//! base32 instead (`=` never appears in the escaped form). Each segment starts with a
//! header record that names its channel again, and that name is the one trusted.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::StorageError;

/// The format this build writes and reads.
pub const FORMAT: u32 = 1;
/// The name of the file that marks a data directory and gives its format.
pub const FORMAT_FILE: &str = "FORMAT";
const FORMAT_PREFIX: &str = "halley data directory, format ";
/// Magic at the start of a segment header record's data.
pub const SEGMENT_MAGIC: &[u8] = b"HALLEYSEG";
/// Longest directory name we write (file systems allow 255 bytes).
const MAX_DIR_NAME: usize = 240;

/// Checks `root` and makes it a data directory if it is new or empty. A directory that
/// holds anything else, or a `FORMAT` of another format, is refused and left as it is.
pub fn open_root(root: &Path) -> Result<(), StorageError> {
    let untrusted = |why: String| {
        Err(StorageError::Untrusted(format!(
            "{}: {why}",
            root.display()
        )))
    };
    match fs::read(root.join(FORMAT_FILE)) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let Some(number) = text
                .strip_prefix(FORMAT_PREFIX)
                .and_then(|rest| rest.strip_suffix('\n'))
            else {
                return untrusted(format!(
                    "{FORMAT_FILE} is not a Halley format header ({:?})",
                    text.chars().take(60).collect::<String>()
                ));
            };
            match number.parse::<u32>() {
                Ok(FORMAT) => {}
                Ok(newer) if newer > FORMAT => {
                    return untrusted(format!(
                    "written in format {newer} by a newer Halley; this one reads format {FORMAT}"
                ))
                }
                _ => return untrusted(format!("{FORMAT_FILE} names an unknown format {number:?}")),
            }
            if !root.join("channels").is_dir() {
                return untrusted("channels/ is missing".into());
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let empty = match fs::read_dir(root) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                Err(e) => return Err(StorageError::io(root, e)),
            };
            if !empty {
                return untrusted(format!(
                    "not empty and has no {FORMAT_FILE}: not a Halley data directory"
                ));
            }
            create_root(root)
        }
        Err(e) => Err(StorageError::io(&root.join(FORMAT_FILE), e)),
    }
}

fn create_root(root: &Path) -> Result<(), StorageError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |e| StorageError::io(&path, e)
    };
    fs::create_dir_all(root.join("channels")).map_err(fail(root))?;
    let temporary = root.join("FORMAT.new");
    let mut file = fs::File::create(&temporary).map_err(fail(&temporary))?;
    file.write_all(format!("{FORMAT_PREFIX}{FORMAT}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail(&temporary))?;
    fs::rename(&temporary, root.join(FORMAT_FILE)).map_err(fail(root))?;
    sync_dir(root)
}

/// Makes a directory's entries (files created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Makes everything written to the file system that holds `handle` durable (`syncfs`).
pub fn sync_file_system(handle: &fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The directory of channel `name` under `root`.
pub fn channel_dir(root: &Path, name: &str) -> PathBuf {
    root.join("channels").join(dir_name(name))
}

/// The file name of the segment whose first id is `first_id`.
pub fn segment_file(first_id: u64) -> String {
    format!("{first_id:020}.log")
}

/// The first id in a segment's file name, if it is one.
pub fn parse_segment_file(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The directory name of a channel; see the module doc.
pub fn dir_name(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            escaped.push(byte as char);
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    if escaped.len() <= MAX_DIR_NAME {
        return escaped;
    }
    let mut out = String::from("=");
    out.push_str(&base32(name.as_bytes()));
    out
}

/// RFC 4648 base32, lower case, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | byte as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The data of a segment header record for channel `name`.
pub fn segment_header(name: &str) -> Vec<u8> {
    let mut data = SEGMENT_MAGIC.to_vec();
    data.extend_from_slice(&FORMAT.to_le_bytes());
    data.extend_from_slice(name.as_bytes());
    data
}

/// The channel a segment header names, or why it cannot be trusted.
pub fn parse_segment_header(data: &[u8]) -> Result<&str, String> {
    let rest = data
        .strip_prefix(SEGMENT_MAGIC)
        .ok_or("the segment header has no HALLEYSEG magic")?;
    let format = rest
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or("the segment header is cut short")?;
    if format != FORMAT {
        return Err(format!(
            "a segment is in format {format}; this Halley reads format {FORMAT}"
        ));
    }
    std::str::from_utf8(&rest[4..])
        .map_err(|_| "the segment header's channel name is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::is_valid_name;

    #[test]
    fn special_names_stay_inside_channels() {
        assert_eq!(dir_name("live"), "live");
        assert_eq!(dir_name("."), "%2E");
        assert_eq!(dir_name(".."), "%2E%2E");
        assert_eq!(dir_name("a:b@c.d"), "a%3Ab%40c%2Ed");
        let long = ".".repeat(128);
        assert!(is_valid_name(&long));
        let dir = dir_name(&long);
        assert!(dir.starts_with('=') && dir.len() <= MAX_DIR_NAME, "{dir}");
        assert_ne!(dir_name(&".".repeat(127)), dir);
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file(42), "00000000000000000042.log");
        assert_eq!(parse_segment_file(&segment_file(42)), Some(42));
        assert_eq!(parse_segment_file("42.log"), None);
        assert_eq!(parse_segment_file("00000000000000000042.tmp"), None);
    }

    #[test]
    fn segment_headers_name_their_channel() {
        assert_eq!(parse_segment_header(&segment_header("a:b")), Ok("a:b"));
        let mut newer = segment_header("a");
        newer[SEGMENT_MAGIC.len()] = 2;
        assert!(parse_segment_header(&newer)
            .unwrap_err()
            .contains("format 2"));
        assert!(parse_segment_header(b"junk").is_err());
    }

    #[test]
    fn a_directory_is_made_trusted_only_when_new_or_empty() {
        let base = std::env::temp_dir().join(format!("halley-layout-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let fresh = base.join("fresh");
        open_root(&fresh).unwrap();
        open_root(&fresh).unwrap();
        let foreign = base.join("foreign");
        fs::create_dir_all(&foreign).unwrap();
        fs::write(foreign.join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            open_root(&foreign),
            Err(StorageError::Untrusted(_))
        ));
        assert!(
            !foreign.join(FORMAT_FILE).exists(),
            "a refused directory is left alone"
        );
        let newer = base.join("newer");
        fs::create_dir_all(newer.join("channels")).unwrap();
        fs::write(newer.join(FORMAT_FILE), "halley data directory, format 9\n").unwrap();
        let error = open_root(&newer).unwrap_err().to_string();
        assert!(error.contains("newer Halley"), "{error}");
        fs::remove_dir_all(&base).unwrap();
    }
}
