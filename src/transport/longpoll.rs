//! `t=longpoll` and `t=poll`: one JSON document per answer,
//! `{"cursor":"4,0","frames":[...]}`, or `CALLBACK({...});` with `callback=` (JSONP).
//! The body is assembled from pieces (the frames are shared) whose total length is
//! known before the head is written, so the answer has a `Content-Length`.

use bytes::Bytes;

use crate::channel::ChannelIndex;
use crate::http::Piece;
use crate::subscription::state::{push_control_json, FetchRange, Frame, Step, Subscription};

/// The frames of one answer, each shared or owned.
#[derive(Debug, Default)]
pub struct Body {
    /// `callback(` + `{"cursor":"...","frames":[`.
    pub open: Vec<u8>,
    /// The frames, in order.
    pub frames: Vec<Bytes>,
    /// `]}` + `);`.
    pub close: &'static [u8],
    /// Collecting stopped at events to fetch from storage first.
    pub fetch: Option<FetchRange>,
}

impl Body {
    /// Collects the frames owed to `sub` (at most `budget` bytes of them, but at least
    /// one), advancing its cursors, and wraps them; the opening is written into `open`
    /// (cleared first: a buffer the caller reuses, given back by `into_open`).
    pub fn collect(
        sub: &mut Subscription,
        index: &ChannelIndex,
        budget: usize,
        mut open: Vec<u8>,
    ) -> Body {
        let mut frames = Vec::new();
        let mut size = 0;
        let mut fetch = None;
        while size < budget {
            let frame = match sub.next(index) {
                Step::Frame(frame) => frame,
                Step::Fetch(range) => {
                    fetch = Some(range);
                    break;
                }
                Step::Idle => break,
            };
            let bytes = match &frame {
                Frame::Event(event) => event.json.clone(),
                _ => {
                    let mut json = Vec::with_capacity(64);
                    push_control_json(&frame, sub, index, &mut json);
                    Bytes::from(json)
                }
            };
            size += bytes.len() + 1;
            frames.push(bytes);
        }
        open.clear();
        if let Some(callback) = &sub.callback {
            open.extend_from_slice(callback.as_bytes());
            open.push(b'(');
        }
        open.extend_from_slice(b"{\"cursor\":\"");
        sub.push_cursor(&mut open);
        open.extend_from_slice(b"\",\"frames\":[");
        let close: &'static [u8] = if sub.callback.is_some() {
            b"]});\n"
        } else {
            b"]}"
        };
        Body {
            open,
            frames,
            close,
            fetch,
        }
    }

    /// The opening's buffer, to reuse.
    pub fn into_open(self) -> Vec<u8> {
        self.open
    }

    /// Bytes of the whole body.
    pub fn len(&self) -> usize {
        let commas = self.frames.len().saturating_sub(1);
        self.open.len()
            + self.frames.iter().map(Bytes::len).sum::<usize>()
            + commas
            + self.close.len()
    }

    /// Whether no frame is in it.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Hands the body's pieces, in order, to `f`.
    pub fn pieces(&self, mut f: impl FnMut(Piece<'_>)) {
        f(Piece::Copy(&self.open));
        for (i, frame) in self.frames.iter().enumerate() {
            if i > 0 {
                f(Piece::Copy(b","));
            }
            f(Piece::Share(frame));
        }
        f(Piece::Copy(self.close));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::setup;
    use super::*;
    use crate::subscription::Transport;

    fn text(body: &Body) -> String {
        let mut out = Vec::new();
        body.pieces(|piece| match piece {
            Piece::Copy(bytes) => out.extend_from_slice(bytes),
            Piece::Share(bytes) => out.extend_from_slice(bytes),
        });
        assert_eq!(out.len(), body.len());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_answer() {
        let (index, mut sub) = setup(Transport::LongPoll, &["a", "b"], 1, 0, None);
        let body = Body::collect(&mut sub, &index, 1 << 20, Vec::new());
        let text = text(&body);
        assert_eq!(
            text,
            r#"{"cursor":"1,1","frames":[{"ch":"a","id":1,"data":"m1"},{"ch":"b","id":1,"data":"m1"}]}"#
        );
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
    }

    #[test]
    fn jsonp_and_empty_answers() {
        let (index, mut sub) = setup(Transport::Poll, &["a"], 2, 2, Some("cb"));
        let body = Body::collect(&mut sub, &index, 1 << 20, Vec::new());
        assert!(body.is_empty());
        assert_eq!(text(&body), "cb({\"cursor\":\"2\",\"frames\":[]});\n");
    }

    #[test]
    fn the_budget_bounds_an_answer_but_one_frame_always_goes() {
        let (index, mut sub) = setup(Transport::LongPoll, &["a"], 5, 0, None);
        let body = Body::collect(&mut sub, &index, 1, Vec::new());
        assert_eq!(body.frames.len(), 1);
        assert_eq!(
            text(&body),
            r#"{"cursor":"1","frames":[{"ch":"a","id":1,"data":"m1"}]}"#
        );
    }
}
