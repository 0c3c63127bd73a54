//! Lists of channel patterns, as `--client-publish` (and a token's `channels` and
//! `publish` claims) give them: each entry a channel name, or a prefix ending in `*`
//! (`room.*`, or `*` for every channel).

use super::is_valid_name;

/// One entry of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Exactly this channel.
    Name(Box<str>),
    /// Every channel whose name starts with this (empty: every channel).
    Prefix(Box<str>),
}

/// A list of patterns; an empty list matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelPatterns {
    patterns: Vec<Pattern>,
}

impl ChannelPatterns {
    /// Nothing matches.
    pub fn none() -> ChannelPatterns {
        ChannelPatterns::default()
    }

    /// Parses a comma list (`room.*,lobby`); spaces around entries are ignored and an
    /// empty text is the empty list.
    pub fn parse(text: &str) -> Result<ChannelPatterns, String> {
        let mut patterns = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            patterns.push(Self::entry(entry)?);
        }
        Ok(ChannelPatterns { patterns })
    }

    /// Builds a list from entries one by one (a token's claim is a JSON array).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<ChannelPatterns, String> {
        let patterns = entries
            .into_iter()
            .map(Self::entry)
            .collect::<Result<_, _>>()?;
        Ok(ChannelPatterns { patterns })
    }

    fn entry(entry: &str) -> Result<Pattern, String> {
        match entry.strip_suffix('*') {
            Some(prefix) if prefix.is_empty() || is_valid_name(prefix) => {
                Ok(Pattern::Prefix(prefix.into()))
            }
            None if is_valid_name(entry) => Ok(Pattern::Name(entry.into())),
            _ => Err(format!(
                "{entry:?}: a pattern is a channel name, or a prefix of one ending in *"
            )),
        }
    }

    /// Whether no channel matches.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `channel` matches one of the patterns.
    pub fn matches(&self, channel: &str) -> bool {
        self.patterns.iter().any(|pattern| match pattern {
            Pattern::Name(name) => **name == *channel,
            Pattern::Prefix(prefix) => channel.starts_with(&**prefix),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        let list = ChannelPatterns::parse("room.*, lobby").unwrap();
        assert!(list.matches("room.1") && list.matches("room.") && list.matches("lobby"));
        assert!(!list.matches("room") && !list.matches("lobby2") && !list.matches("x"));
        let all = ChannelPatterns::parse("*").unwrap();
        assert!(all.matches("anything"));
        let none = ChannelPatterns::parse("").unwrap();
        assert!(none.is_empty() && !none.matches("a"));
        assert_eq!(none, ChannelPatterns::none());
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in ["a/b", "room*x", "**", "a,b c", "é*"] {
            assert!(ChannelPatterns::parse(bad).is_err(), "{bad}");
        }
        assert!(ChannelPatterns::from_entries(["a", "b.*"]).is_ok());
        assert!(ChannelPatterns::from_entries([""]).is_err());
    }
}
