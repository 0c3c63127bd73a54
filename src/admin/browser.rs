//! Browser publishes handed over by the subscriber loops (`admin_inbox.rs`): the loop
//! has checked that the channel allows it, its size and its rate; here it gets its id
//! and is stored exactly as an admin port publish is, and the answer goes back to the
//! loop once it is stored.

use super::acks;
use super::{AdminApp, PublishError};
use crate::admin_inbox::{ClientPublish, PublishAnswer};
use crate::stats::bump;

/// Stores a browser's publish and answers its loop (at once, or once stored).
pub fn publish(app: &mut AdminApp, publish: ClientPublish) {
    let ClientPublish {
        reply_to,
        channel,
        data,
    } = publish;
    if app.shared.is_some() {
        return super::shared::publish_for_loop(app, reply_to, &channel, data.as_bytes());
    }
    if app.acks.journal.broken().is_some() {
        bump(&app.stats.admin.publishes_refused_storage);
        return app.bus.answer(reply_to, PublishAnswer::Unavailable);
    }
    match app.ids.publish(&channel, &data) {
        Ok(event) => acks::store_for_loop(app, reply_to, event, data.as_bytes()),
        Err(PublishError::Closed) => {
            bump(&app.stats.admin.publishes_to_closed);
            acks::answer_loop_after_stored(app, reply_to, PublishAnswer::Closed);
        }
    }
}
