//! The body of the `plasma_message` fuzz target, shared by the libFuzzer binary, the stable
//! `replay` driver and the Plasma crate's corpus test (`backends/plasma/tests/fuzz_corpus.rs`
//! includes this file with `#[path]`). It depends on `tensor_ipc_plasma` and `std` only.

use tensor_ipc_plasma::frame::read_frame;
use tensor_ipc_plasma::{MAX_MESSAGE_SIZE, Message, notification};

/// Hostile bytes through everything that parses what a Plasma peer sends:
///
/// * the whole input as a stream of frames (`read_frame`, with a small length limit too);
/// * its first byte as a message type and the rest as that message's flatbuffer body
///   (`Message::decode`); a message that decodes must survive encoding, framing and
///   decoding again unchanged;
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
    if let Ok(message) = Message::decode(i64::from(kind), body) {
        let framed = message.encode_frame();
        let frame = read_frame(&mut &framed[..], MAX_MESSAGE_SIZE).expect("our own frame reads");
        let again = Message::decode(frame.kind, &frame.body).expect("our own message decodes");
        assert_eq!(again, message, "decode(encode(m)) != m");
    }
    let _ = notification::decode(body);
}
