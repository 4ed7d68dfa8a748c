//! Feeds arbitrary bytes to the frame decoder, in arbitrary chunks, and checks that it never
//! panics and that every frame it accepts survives re-encoding unchanged.

#![no_main]

use actor_remote::codec::{FrameDecoder, encode_frame};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size the bytes arrive in, the second a small or the default
    // frame limit; the rest is the stream.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let Some((&limit, stream)) = rest.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let max_frame_len = if limit & 1 == 0 {
        256
    } else {
        actor_remote::codec::DEFAULT_MAX_FRAME_LEN
    };

    let mut decoder = FrameDecoder::new(max_frame_len);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let mut again = BytesMut::new();
                    encode_frame(&frame, &mut again).expect("a decoded frame re-encodes");
                    let back = FrameDecoder::new(max_frame_len)
                        .decode(&mut again)
                        .expect("a re-encoded frame decodes")
                        .expect("a re-encoded frame is complete");
                    assert_eq!(back, frame);
                    assert!(again.is_empty());
                }
                Ok(None) => break,
                // A stream with a bad frame is closed by the transport: stop here too.
                Err(_) => return,
            }
        }
    }
});
