//! The admin port's requests and answers.

use super::storing::Answer;
use super::Admin;
use crate::channel::is_valid_name;
use crate::http::request::RequestHead;
use crate::http::{target, Method, Status};
use crate::stats::bump;

/// How long `GET /channels/{name}` waits for the loops to count their subscribers.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

const JSON: &[u8] = b"application/json";
const TEXT: &[u8] = b"text/plain; charset=utf-8";

impl Admin {
    /// Answers one complete request, read into `input`, with its body.
    pub(super) fn route(
        &mut self,
        key: usize,
        head: &RequestHead,
        input: &[u8],
        body: &[u8],
        keep_alive: bool,
    ) {
        let Ok((path, _query)) = target::split(head.target.of(input)) else {
            bump(&self.stats.admin.bad_requests);
            return self.reply(
                key,
                Status::BadRequest,
                TEXT,
                b"bad request target\n",
                keep_alive,
            );
        };
        let method = head.method;
        let (action, rest) = match path[1..].split_once('/') {
            Some((action, rest)) => (action, Some(rest)),
            None => (&path[1..], None),
        };
        match (method, action, rest) {
            (Method::Post, "pub", Some(name)) => self.publish(key, name, body, keep_alive),
            (Method::Post, "close", Some(name)) => self.close_channel(key, name, keep_alive),
            (Method::Get | Method::Head, "channels", Some(name)) => {
                self.channel_info(key, name, keep_alive)
            }
            (Method::Get | Method::Head, "stats", None) => {
                self.stats.admin.channels.store(
                    self.store.len() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                let json = self.stats.to_json();
                self.reply(key, Status::Ok, JSON, json.as_bytes(), keep_alive)
            }
            (Method::Get | Method::Head, "metrics", None) => {
                self.stats.admin.channels.store(
                    self.store.len() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                let text = self.stats.to_prometheus();
                self.reply(
                    key,
                    Status::Ok,
                    b"text/plain; version=0.0.4; charset=utf-8",
                    text.as_bytes(),
                    keep_alive,
                )
            }
            (Method::Get | Method::Head, "healthz", None) => {
                self.reply(key, Status::Ok, TEXT, b"ok\n", keep_alive)
            }
            (Method::Get | Method::Head, "", None) => self.reply(
                key,
                Status::Ok,
                b"text/html; charset=utf-8",
                crate::assets::CONSOLE.body,
                keep_alive,
            ),
            (_, "pub" | "close", Some(_))
            | (_, "channels", Some(_))
            | (_, "stats" | "metrics" | "healthz" | "", None) => {
                bump(&self.stats.admin.methods_not_allowed);
                self.reply(
                    key,
                    Status::MethodNotAllowed,
                    TEXT,
                    b"method not allowed here\n",
                    keep_alive,
                )
            }
            _ => {
                bump(&self.stats.admin.not_found);
                self.reply(key, Status::NotFound, TEXT, b"not found\n", keep_alive)
            }
        }
    }

    /// Decodes and checks the channel name of a path segment, and answers with
    /// `answer` if it is good, 400 if not. (The name is decoded into a buffer kept for
    /// the next request.)
    fn with_channel_name(
        &mut self,
        key: usize,
        segment: &str,
        keep_alive: bool,
        answer: impl FnOnce(&mut Admin, &str),
    ) {
        let mut name = std::mem::take(&mut self.name);
        name.clear();
        if target::decode_into(segment, false, &mut name).is_ok() && is_valid_name(&name) {
            answer(self, &name);
        } else {
            bump(&self.stats.admin.bad_requests);
            self.reply(
                key,
                Status::BadRequest,
                TEXT,
                b"a channel name is 1 to 128 bytes of A-Z a-z 0-9 _ . : @ -\n",
                keep_alive,
            );
        }
        self.name = name;
    }

    fn publish(&mut self, key: usize, segment: &str, body: &[u8], keep_alive: bool) {
        self.with_channel_name(key, segment, keep_alive, |admin, name| {
            admin.publish_to(key, name, body, keep_alive)
        })
    }

    fn publish_to(&mut self, key: usize, name: &str, body: &[u8], keep_alive: bool) {
        if self.refuse_if_storage_broken(key, keep_alive) {
            return;
        }
        if body.len() > self.config.max_message {
            bump(&self.stats.admin.messages_too_large);
            return self.reply(
                key,
                Status::ContentTooLarge,
                TEXT,
                b"body over --max-message\n",
                keep_alive,
            );
        }
        let Ok(data) = std::str::from_utf8(body) else {
            bump(&self.stats.admin.bad_requests);
            return self.reply(
                key,
                Status::BadRequest,
                TEXT,
                b"the body must be UTF-8\n",
                keep_alive,
            );
        };
        match self.store.publish(name, data) {
            Ok(event) => {
                let answer = Answer::Id {
                    status: Status::Created,
                    channel: event.channel.clone(),
                    id: event.id,
                };
                self.store_and_answer(key, event, body, answer, keep_alive)
            }
            Err(super::PublishError::Closed) => {
                bump(&self.stats.admin.publishes_to_closed);
                let answer = Answer::Text {
                    status: Status::Conflict,
                    body: b"the channel is closed\n",
                };
                self.answer_after_stored(key, answer, keep_alive)
            }
        }
    }

    fn close_channel(&mut self, key: usize, segment: &str, keep_alive: bool) {
        self.with_channel_name(key, segment, keep_alive, |admin, name| {
            admin.close_named(key, name, keep_alive)
        })
    }

    fn close_named(&mut self, key: usize, name: &str, keep_alive: bool) {
        if self.refuse_if_storage_broken(key, keep_alive) {
            return;
        }
        let closing = self.store.close(name);
        let answer = Answer::Id {
            status: Status::Ok,
            channel: closing.channel,
            id: closing.id,
        };
        match closing.marker {
            Some(marker) => self.store_and_answer(key, marker, b"", answer, keep_alive),
            None => self.answer_after_stored(key, answer, keep_alive),
        }
    }

    fn channel_info(&mut self, key: usize, segment: &str, keep_alive: bool) {
        self.with_channel_name(key, segment, keep_alive, |admin, name| {
            admin.channel_info_of(key, name, keep_alive)
        })
    }

    fn channel_info_of(&mut self, key: usize, name: &str, keep_alive: bool) {
        let Some(info) = self.store.info(name) else {
            return self.reply(
                key,
                Status::NotFound,
                TEXT,
                b"no such channel\n",
                keep_alive,
            );
        };
        let subscribers = self.bus.count_subscribers(name, COUNT_TIMEOUT);
        let answer = format!(
            "{{\"channel\":\"{name}\",\"first_id\":{},\"last_id\":{},\"closed\":{},\"subscribers\":{subscribers}}}\n",
            info.first_id, info.last_id, info.closed
        );
        self.reply(key, Status::Ok, JSON, answer.as_bytes(), keep_alive)
    }
}
