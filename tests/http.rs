//! HTTP/1.1 behaviour over real sockets: keep-alive, pipelining, HTTP/1.0, HEAD,
//! OPTIONS and CORS, routing and refusals.

mod util;

use util::{start, start_with, Client};

use halley::config::AllowOrigin;

#[test]
fn keep_alive_carries_several_requests() {
    let server = start();
    server.publish_ok("k", "v");
    let mut client = server.client();
    for _ in 0..3 {
        let response = client.exchange(b"GET /sub/k?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(response.status, 200);
        assert!(response.header("Connection").is_none());
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = start();
    server.publish_ok("p", "one");
    let mut client = server.client();
    client.send(
        b"GET /sub/p?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /sub/p?t=longpoll HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /sub/p?t=poll HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(client.response().json()["frames"][0]["data"], "one");
    assert_eq!(client.response().status, 404);
    // The long-poll holds; the request behind it waits its turn.
    server.wait_counter("subscribers", 1);
    server.publish_ok("p", "two");
    assert_eq!(client.response().json()["frames"][0]["data"], "two");
    assert_eq!(client.response().json()["cursor"], "2");
}

#[test]
fn http10_is_served_and_streams_end_by_closing() {
    let server = start();
    server.publish_ok("old", "x");
    let mut client = server.client();
    let response = client.exchange(b"GET /sub/old?t=poll&since=0 HTTP/1.0\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Connection"), Some("close"));
    client.expect_closed();

    let mut kept = server.client();
    let response = kept.exchange(b"GET /sub/old?t=poll HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(response.header("Connection"), Some("keep-alive"));
    assert_eq!(
        kept.exchange(b"GET /sub/old?t=poll HTTP/1.0\r\n\r\n")
            .status,
        200
    );

    let mut stream = server.client();
    stream.send(b"GET /sub/old?t=stream&since=0 HTTP/1.0\r\n\r\n");
    let head = stream.head();
    assert!(head.header("Transfer-Encoding").is_none());
    assert_eq!(head.header("Connection"), Some("close"));
    assert_eq!(
        stream.read_through(b"\n"),
        b"{\"hb\":1}\n",
        "bare, not chunked"
    );
    assert_eq!(
        stream.read_through(b"\n"),
        b"{\"ch\":\"old\",\"id\":1,\"data\":\"x\"}\n"
    );
    server.close_channel("old");
    assert_eq!(
        stream.expect_closed(),
        b"{\"ch\":\"old\",\"id\":2,\"closed\":true}\n"
    );
}

#[test]
fn head_answers_without_a_body_and_never_holds() {
    let server = start();
    let mut client = server.client();
    client.send(b"HEAD /sub/h?t=longpoll HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.head();
    assert_eq!(head.status, 200);
    let length: usize = head.header("Content-Length").unwrap().parse().unwrap();
    assert!(length > 0);
    client.send(b"HEAD /sub/h?t=sse HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.head();
    assert_eq!(
        head.header("Content-Type"),
        Some("text/event-stream; charset=utf-8")
    );
    // No body followed either head: the next answer starts right away.
    let next = client.exchange(b"GET /sub/h?t=poll HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(next.status, 200);
}

#[test]
fn options_preflight_and_cors_headers() {
    let server = start();
    let mut client = server.client();
    let preflight = client.exchange(
        b"OPTIONS /sub/c HTTP/1.1\r\nHost: t\r\nOrigin: https://page.example\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: last-event-id\r\n\r\n",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(preflight
        .header("Access-Control-Allow-Methods")
        .unwrap()
        .contains("GET"));
    assert!(preflight
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Last-Event-ID"));
    let answer = client
        .exchange(b"GET /sub/c?t=poll HTTP/1.1\r\nHost: t\r\nOrigin: https://page.example\r\n\r\n");
    assert_eq!(answer.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(answer
        .header("Access-Control-Expose-Headers")
        .unwrap()
        .contains("ETag"));
}

#[test]
fn an_origin_list_echoes_allowed_origins_only() {
    let server =
        start_with(|c| c.allow_origin = AllowOrigin::parse("https://good.example").unwrap());
    let mut client = server.client();
    let allowed = client
        .exchange(b"GET /sub/c?t=poll HTTP/1.1\r\nHost: t\r\nOrigin: https://good.example\r\n\r\n");
    assert_eq!(
        allowed.header("Access-Control-Allow-Origin"),
        Some("https://good.example")
    );
    assert_eq!(allowed.header("Vary"), Some("Origin"));
    let denied = client
        .exchange(b"GET /sub/c?t=poll HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n");
    assert!(denied.header("Access-Control-Allow-Origin").is_none());
    assert_eq!(denied.header("Vary"), Some("Origin"));
}

#[test]
fn unknown_paths_methods_and_bodies() {
    let server = start();
    assert_eq!(server.get("/nope").status, 404);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<script src=\"/halley.js\"></script>"));
    let client = server.get("/halley.js");
    assert_eq!(
        client.header("Content-Type"),
        Some("application/javascript; charset=utf-8")
    );
    assert!(client.text().contains("root.Halley = Halley"));
    let module = server.get("/halley.mjs");
    assert!(module
        .text()
        .ends_with("\nexport default globalThis.Halley;\n"));
    assert!(server.get("/chat").text().contains("chat.lobby"));
    assert!(server
        .get("/halley.d.ts")
        .text()
        .contains("export function subscribe"));
    let mut client = server.client();
    let post = client.exchange(b"POST /sub/x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD, OPTIONS"));
    client.expect_closed();
    let mut client = server.client();
    let get_with_body =
        client.exchange(b"GET /sub/x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(get_with_body.status, 405);
    let mut client = server.client();
    assert_eq!(
        client
            .exchange(b"DELETE /sub/x HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        405
    );
    assert!(server.counter("methods_not_allowed") >= 3);
}

#[test]
fn bad_subscriptions_are_400_and_keep_the_connection() {
    let server = start_with(|c| c.max_channels = 2);
    let mut client = server.client();
    let cases: &[&str] = &[
        "/sub/bad%2Fname",
        "/sub/a,a",
        "/sub/a?since=1,2,3",
        "/sub/a?since=x",
        "/sub/a?t=carrier-pigeon",
        "/sub/a?t=iframe",
        "/sub/a?t=iframe&callback=alert(1)",
        "/sub/a?t=iframe&callback=a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.bb.cc.dd.ee.ff",
        "/sub/a?t=sse&callback=cb",
    ];
    for path in cases {
        let response =
            client.exchange(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(response.status, 400, "{path}: {}", response.text());
    }
    let too_many = client.exchange(b"GET /sub/a,b,c HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(too_many.status, 400);
    assert_eq!(server.counter("too_many_channels"), 1);
    assert_eq!(server.counter("bad_requests"), cases.len() as u64);
}

#[test]
fn absolute_form_targets_and_encoded_names() {
    let server = start();
    server.publish_ok("a:b", "x");
    let mut client = Client::connect(server.sub);
    let response = client.exchange(
        b"GET http://example.com/sub/a%3Ab?t=poll&since=0 HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    assert_eq!(response.json()["frames"][0]["ch"], "a:b");
}

#[test]
fn defer_accept_hands_over_connections_once_they_speak() {
    let server = start_with(|c| c.defer_accept = std::time::Duration::from_secs(5));
    server.publish_ok("d", "v");
    // A silent connection stays with the kernel ...
    let mut silent = server.client();
    // ... while one that speaks is served at once, and kept alive after its first
    // answer (it joins the epoll set only then).
    let mut talking = server.client();
    for _ in 0..2 {
        let response = talking.exchange(b"GET /sub/d?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(response.json()["frames"][0]["data"], "v");
    }
    assert_eq!(
        server.counter("connections_accepted"),
        1,
        "the silent connection was handed to the server before it sent anything"
    );
    // Once it speaks, it is accepted and answered.
    let response = silent.exchange(b"GET /sub/d?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(server.counter("connections_accepted"), 2);
}
