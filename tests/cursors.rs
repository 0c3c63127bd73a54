//! Cursors over real sockets: `since`, `Last-Event-ID`, multiplexed cursor lists, `gap`
//! and `reset` frames, close markers and `204`, streams that end and are resumed.

mod util;

use std::time::Duration;

use util::{start, start_with, Client};

fn frame(channel: &str, id: u64, data: &str) -> String {
    format!("{{\"ch\":\"{channel}\",\"id\":{id},\"data\":\"{data}\"}}")
}

#[test]
fn since_absent_zero_and_n() {
    let server = start();
    for body in ["a", "b", "c"] {
        server.publish_ok("c", body);
    }
    assert_eq!(
        server.get("/sub/c?t=poll").text(),
        "{\"cursor\":\"3\",\"frames\":[]}"
    );
    let all = server.get("/sub/c?t=poll&since=0").json();
    assert_eq!(all["frames"].as_array().unwrap().len(), 3);
    let after_two = server.get("/sub/c?t=poll&since=2").json();
    assert_eq!(after_two["frames"][0]["id"], 3);
    assert_eq!(after_two["cursor"], "3");
}

#[test]
fn last_event_id_takes_the_place_of_since() {
    let server = start();
    for body in ["a", "b", "c"] {
        server.publish_ok("c", body);
    }
    let mut client = server.client();
    client.send(b"GET /sub/c?t=sse&since=0 HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 2\r\n\r\n");
    client.head();
    client.chunk();
    assert_eq!(
        client.chunk_text(),
        format!("id: 3\ndata: {}\n\n", frame("c", 3, "c"))
    );
}

#[test]
fn multiplexed_cursor_lists() {
    let server = start();
    server.publish_ok("a", "a1");
    server.publish_ok("a", "a2");
    server.publish_ok("b", "b1");
    let answer = server.get("/sub/a,b?t=poll&since=1,0").json();
    assert_eq!(answer["cursor"], "2,1");
    let frames = answer["frames"].as_array().unwrap();
    assert_eq!(
        (frames[0]["ch"].as_str(), frames[0]["id"].as_u64()),
        (Some("a"), Some(2))
    );
    assert_eq!(
        (frames[1]["ch"].as_str(), frames[1]["id"].as_u64()),
        (Some("b"), Some(1))
    );

    let mut sse = server.client();
    sse.get("/sub/a,b?t=sse");
    sse.head();
    sse.chunk();
    server.publish_ok("b", "b2");
    assert_eq!(
        sse.chunk_text(),
        format!("id: 2,2\ndata: {}\n\n", frame("b", 2, "b2"))
    );
    server.publish_ok("a", "a3");
    assert_eq!(
        sse.chunk_text(),
        format!("id: 3,2\ndata: {}\n\n", frame("a", 3, "a3"))
    );
    // Resuming with that id gives exactly what came after it.
    server.publish_ok("b", "b3");
    let mut resumed = server.client();
    resumed.send(b"GET /sub/a,b?t=sse HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 3,2\r\n\r\n");
    resumed.head();
    resumed.chunk();
    assert_eq!(
        resumed.chunk_text(),
        format!("id: 3,3\ndata: {}\n\n", frame("b", 3, "b3"))
    );
}

#[test]
fn a_cursor_older_than_history_gets_a_gap_and_zero_never_does() {
    let server = start_with(|c| c.history = 3);
    for i in 1..=10 {
        server.publish_ok("g", &format!("m{i}"));
    }
    let answer = server.get("/sub/g?t=poll&since=2").json();
    assert_eq!(
        answer["frames"][0],
        serde_json::json!({"ch": "g", "gap": [3, 7]})
    );
    assert_eq!(answer["frames"][1]["id"], 8);
    assert_eq!(answer["frames"].as_array().unwrap().len(), 4);
    let zero = server.get("/sub/g?t=poll&since=0").json();
    assert_eq!(
        zero["frames"][0]["id"], 8,
        "since=0 is what is retained, no gap"
    );
    let mut stream = server.client();
    stream.get("/sub/g?t=stream&since=1");
    stream.head();
    stream.prelude("stream");
    assert_eq!(stream.chunk_text(), "{\"ch\":\"g\",\"gap\":[2,7]}\n");
    assert_eq!(stream.chunk_text(), format!("{}\n", frame("g", 8, "m8")));
}

#[test]
fn a_cursor_ahead_gets_a_reset_at_once_on_every_transport() {
    let server = start();
    server.publish_ok("r", "one");
    let longpoll = server.get("/sub/r?t=longpoll&since=50");
    assert_eq!(
        longpoll.text(),
        "{\"cursor\":\"1\",\"frames\":[{\"ch\":\"r\",\"reset\":1}]}"
    );
    let poll = server.get("/sub/r?t=poll&since=50");
    assert_eq!(
        poll.text(),
        "{\"cursor\":\"1\",\"frames\":[{\"ch\":\"r\",\"reset\":1}]}"
    );
    let mut stream = server.client();
    stream.get("/sub/r?t=stream&since=50");
    stream.head();
    stream.prelude("stream");
    assert_eq!(stream.chunk_text(), "{\"ch\":\"r\",\"reset\":1}\n");
    let mut sse = server.client();
    sse.get("/sub/r,unknown?t=sse&since=50,7");
    sse.head();
    sse.chunk();
    assert_eq!(
        sse.chunk_text(),
        "id: 1,7\ndata: {\"ch\":\"r\",\"reset\":1}\n\n"
    );
    assert_eq!(
        sse.chunk_text(),
        "id: 1,0\ndata: {\"ch\":\"unknown\",\"reset\":0}\n\n"
    );
    let mut iframe = server.client();
    iframe.get("/sub/r?t=iframe&callback=f&since=9");
    iframe.head();
    iframe.prelude("iframe");
    assert_eq!(
        iframe.chunk_text(),
        "<script>f({\"ch\":\"r\",\"reset\":1});</script>\n"
    );
    // After the reset the stream continues from the server's history.
    server.publish_ok("r", "two");
    assert_eq!(stream.chunk_text(), format!("{}\n", frame("r", 2, "two")));
}

#[test]
fn close_reaches_subscribers_and_ends_their_streams() {
    let server = start();
    server.publish_ok("end", "last words");
    let mut stream = server.client();
    stream.get("/sub/end?t=stream");
    stream.head();
    stream.prelude("stream");
    let mut held = server.client();
    held.get("/sub/end?t=longpoll");
    server.wait_counter("subscribers", 2);
    assert_eq!(server.close_channel("end"), 2);
    assert_eq!(
        stream.chunk_text(),
        "{\"ch\":\"end\",\"id\":2,\"closed\":true}\n"
    );
    assert_eq!(
        stream.chunk(),
        None,
        "the stream ends after the close marker"
    );
    let answer = held.response().json();
    assert_eq!(
        answer["frames"][0],
        serde_json::json!({"ch": "end", "id": 2, "closed": true})
    );
    let (status, _) = server.publish("end", "too late");
    assert_eq!(status, 409);
}

#[test]
fn a_closed_subscription_is_204_on_every_transport() {
    let server = start();
    server.publish_ok("done", "x");
    server.close_channel("done");
    for t in ["longpoll", "poll", "stream", "sse", "iframe&callback=f"] {
        for since in ["", "&since=2", "&since=5"] {
            let response = server.get(&format!("/sub/done?t={t}{since}"));
            assert_eq!(response.status, 204, "t={t}{since}");
        }
        let catching_up = server.get(&format!("/sub/done?t={t}&since=1"));
        assert_eq!(catching_up.status, 200, "t={t} from before the close");
    }
    server.publish_ok("open", "y");
    assert_eq!(
        server.get("/sub/done,open?t=poll&since=2,1").status,
        200,
        "one channel still open"
    );
    let mut sse = server.client();
    sse.send(b"GET /sub/done HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\nLast-Event-ID: 2\r\n\r\n");
    assert_eq!(sse.head().status, 204, "EventSource stops on 204");
}

#[test]
fn a_multiplexed_stream_ends_when_every_channel_is_closed() {
    let server = start();
    let mut stream = server.client();
    stream.get("/sub/x,y?t=stream");
    stream.head();
    stream.prelude("stream");
    server.close_channel("x");
    assert_eq!(
        stream.chunk_text(),
        "{\"ch\":\"x\",\"id\":1,\"closed\":true}\n"
    );
    server.publish_ok("y", "still here");
    assert_eq!(
        stream.chunk_text(),
        format!("{}\n", frame("y", 1, "still here"))
    );
    server.close_channel("y");
    assert_eq!(
        stream.chunk_text(),
        "{\"ch\":\"y\",\"id\":2,\"closed\":true}\n"
    );
    assert_eq!(stream.chunk(), None);
}

#[test]
fn streams_end_after_max_bytes_and_resume_without_loss_or_repeat() {
    let server = start_with(|c| c.stream_max_bytes = 300);
    let total = 40;
    for i in 1..=total {
        server.publish_ok("big", &format!("message number {i}"));
    }
    let mut received = Vec::new();
    let mut cursor = 0u64;
    let mut streams = 0;
    let mut client = server.client();
    while received.len() < total {
        client.get(&format!("/sub/big?t=sse&since={cursor}"));
        assert_eq!(client.head().status, 200);
        client.chunk();
        streams += 1;
        while let Some(chunk) = client.chunk() {
            let text = String::from_utf8(chunk).unwrap();
            let id_line = text.lines().next().unwrap();
            cursor = id_line.trim_start_matches("id: ").parse().unwrap();
            let data: serde_json::Value =
                serde_json::from_str(text.lines().nth(1).unwrap().trim_start_matches("data: "))
                    .unwrap();
            received.push(data["id"].as_u64().unwrap());
        }
        assert!(streams <= total, "streams make progress");
    }
    assert_eq!(
        received,
        (1..=total as u64).collect::<Vec<_>>(),
        "each message once, in order"
    );
    assert!(streams > 3, "the byte limit ended streams ({streams})");
}

#[test]
fn streams_end_after_max_age() {
    let server = start_with(|c| c.stream_max_age = Duration::from_millis(150));
    let mut client = server.client();
    client.get("/sub/age?t=stream");
    client.head();
    client.prelude("stream");
    assert_eq!(client.chunk(), None, "the stream ended by itself");
    // The connection is still usable for the resume.
    server.publish_ok("age", "later");
    client.get("/sub/age?t=poll&since=0");
    assert_eq!(client.response().json()["frames"][0]["data"], "later");
}

#[test]
fn an_event_published_while_catching_up_is_delivered_once() {
    let server = start_with(|c| c.max_pending = 8192);
    let body = "x".repeat(900);
    for _ in 0..30 {
        server.publish_ok("cu", &body);
    }
    let mut client = Client::connect(server.sub);
    client.get("/sub/cu?t=stream&since=0");
    client.head();
    client.prelude("stream");
    server.publish_ok("cu", "live one");
    let mut ids = Vec::new();
    while ids.len() < 31 {
        let line = client.chunk_text();
        let json: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        ids.push(json["id"].as_u64().unwrap());
    }
    assert_eq!(ids, (1..=31).collect::<Vec<_>>());
}
