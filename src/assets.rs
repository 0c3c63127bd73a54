//! The files built into the binary: the browser client (`client-js/halley.js`, and the
//! same as an ES module) and the pages (the live blog and the chat on the subscriber
//! port, the publisher's console on the admin port).

/// A file served as is.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub content_type: &'static [u8],
    pub body: &'static [u8],
}

const HTML: &[u8] = b"text/html; charset=utf-8";
const JS: &[u8] = b"application/javascript; charset=utf-8";

/// `GET /halley.js`: the client for a `<script>` tag (it sets the global `Halley`).
pub const CLIENT: Asset = Asset {
    content_type: JS,
    body: include_bytes!("../client-js/halley.js"),
};

/// `GET /halley.mjs`: the same file as an ES module (`import Halley from "/halley.mjs"`).
pub const CLIENT_MODULE: Asset = Asset {
    content_type: JS,
    body: concat!(
        include_str!("../client-js/halley.js"),
        "\nexport default globalThis.Halley;\n"
    )
    .as_bytes(),
};

/// `GET /halley.d.ts`: the client's type declarations.
pub const CLIENT_TYPES: Asset = Asset {
    content_type: b"application/typescript; charset=utf-8",
    body: include_bytes!("../client-js/halley.d.ts"),
};

/// `GET /` on the subscriber port: the live blog of channel `live`.
pub const LIVE_BLOG: Asset = Asset {
    content_type: HTML,
    body: include_bytes!("pages/live.html"),
};

/// `GET /chat` on the subscriber port: several rooms on one connection.
pub const CHAT: Asset = Asset {
    content_type: HTML,
    body: include_bytes!("pages/chat.html"),
};

/// `GET /` on the admin port: the publisher's console.
pub const CONSOLE: Asset = Asset {
    content_type: HTML,
    body: include_bytes!("pages/console.html"),
};

/// The subscriber port's file at `path`, if there is one.
pub fn subscriber_file(path: &str) -> Option<Asset> {
    Some(match path {
        "/" | "/index.html" => LIVE_BLOG,
        "/chat" => CHAT,
        "/halley.js" => CLIENT,
        "/halley.mjs" => CLIENT_MODULE,
        "/halley.d.ts" => CLIENT_TYPES,
        _ => return None,
    })
}
