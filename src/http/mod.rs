//! HTTP/1.x over byte buffers: parsing a request head and enforcing its limits
//! (`request`), splitting and decoding the request target (`target`), writing response
//! heads (`response`, `date`), decoding chunked request bodies (`chunked`) and the
//! per-connection queue of output written with vectored writes (`write_queue`).
//! Nothing here touches a socket except through `std::io::Write`, so all of it is
//! tested with byte strings.

pub mod chunked;
pub mod date;
pub mod request;
pub mod response;
pub mod target;
pub mod write_queue;

pub use request::{parse_head, BodyLength, HeadError, Method, Parsed, RequestHead, Span};
pub use response::Status;
pub use write_queue::{Piece, WriteQueue};
