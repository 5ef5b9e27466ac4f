//! The body of the `plasma_message` fuzz target, shared by the libFuzzer binary, the stable
//! `replay` driver and the protocol crate's corpus test
//! (`backends/plasma-protocol/tests/fuzz_corpus.rs` includes this file with `#[path]`). It
//! depends on `tensor_ipc_plasma_protocol` and `std` only.

use tensor_ipc_plasma_protocol::frame::read_frame;
use tensor_ipc_plasma_protocol::{AnyReply, AnyRequest, MAX_MESSAGE_SIZE, notification};

/// Hostile bytes through everything that parses what a Plasma peer sends:
///
/// * the whole input as a stream of frames (`read_frame`, with a small length limit too);
/// * its first byte as a message type and the rest as that message's flatbuffer body, decoded
///   as a request (what a store parses) and as a reply (what a client parses) through the
///   generated verifiers; a message that decodes must survive encoding, framing and decoding
///   again unchanged;
/// * the rest as a notification body (`notification::decode`).
///
/// Nothing may panic; every failure must be an error value.
pub fn plasma_message(data: &[u8]) {
    let mut stream = data;
    for _ in 0..16 {
        if read_frame(&mut stream, 1 << 16).is_err() {
            break;
        }
    }
    let _ = read_frame(&mut &data[..], 64);
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let kind = i64::from(kind);
    if let Ok(request) = AnyRequest::decode(kind, body) {
        let framed = request.encode_frame();
        let frame = read_frame(&mut &framed[..], MAX_MESSAGE_SIZE).expect("our own frame reads");
        let again = AnyRequest::decode(frame.kind, &frame.body).expect("our own request decodes");
        assert_eq!(again, request, "decode(encode(m)) != m");
    }
    if let Ok(reply) = AnyReply::decode(kind, body) {
        let framed = reply.encode_frame();
        let frame = read_frame(&mut &framed[..], MAX_MESSAGE_SIZE).expect("our own frame reads");
        let again = AnyReply::decode(frame.kind, &frame.body).expect("our own reply decodes");
        assert_eq!(again, reply, "decode(encode(m)) != m");
    }
    let _ = notification::decode(body);
}
