//! Properties of the wire codec: valid frames round-trip, whatever the chunking, and no input
//! (random, truncated or corrupted) makes the decoder panic. The inputs the fuzzers keep
//! (`fuzz/corpus`, `fuzz/regressions`) are replayed here too, so a crash once found stays fixed.

use std::path::{Path, PathBuf};

use actor_remote::codec::{
    Control, DEFAULT_MAX_FRAME_LEN, FRAME_LEN_CEILING, Frame, FrameDecoder, StreamHeaders, Target,
    TraceContext, decode_body, encode_frame,
};
use bytes::{Buf, Bytes, BytesMut};
use proptest::prelude::*;

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        "\\PC{1,40}".prop_map(Target::Name),
        any::<u64>().prop_map(Target::Id),
    ]
}

fn trace() -> impl Strategy<Value = Option<TraceContext>> {
    proptest::option::of((any::<u128>(), any::<u64>(), any::<u8>()).prop_map(
        |(trace_id, span_id, flags)| TraceContext {
            trace_id,
            span_id,
            flags,
        },
    ))
}

fn body() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from)
}

fn control() -> impl Strategy<Value = Control> {
    prop_oneof![
        any::<u64>().prop_map(|nonce| Control::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Control::Pong { nonce }),
        Just(Control::Leaving),
        proptest::collection::vec(any::<u8>(), 0..100).prop_map(Control::Membership),
    ]
}

/// Any frame that satisfies its kind's header rules.
fn frame() -> impl Strategy<Value = Frame> {
    let tag = "[a-z0-9._]{1,40}|\\PC{1,20}";
    let kinds = prop_oneof![
        (target(), tag, body()).prop_map(|(t, tag, b)| Frame::tell(t, tag, b)),
        (1..=u64::MAX, target(), tag, body()).prop_map(|(id, t, tag, b)| Frame::ask(id, t, tag, b)),
        (1..=u64::MAX, body()).prop_map(|(id, b)| Frame::reply(id, b)),
        (any::<u64>(), body()).prop_map(|(id, b)| Frame::error(id, b)),
        control().prop_map(|c| Frame::control(&c).expect("control encodes")),
    ];
    (kinds, trace()).prop_map(|(mut frame, trace)| {
        frame.trace = trace;
        frame
    })
}

/// The frames of one lane: a few targets and tags, over and over, so later ones refer to
/// earlier ones; now and then a reply or control frame.
fn lane_frame() -> impl Strategy<Value = Frame> {
    let target = prop_oneof![
        Just(Target::Name("products".into())),
        Just(Target::Name("orders".into())),
        Just(Target::Id(7)),
    ];
    let tag = prop_oneof![Just("shop.a.v1"), Just("shop.b.v1"), Just("shop.c.v1")];
    let kinds = prop_oneof![
        4 => (target.clone(), tag.clone(), body()).prop_map(|(t, tag, b)| Frame::tell(t, tag, b)),
        4 => (1..=u64::MAX, target, tag, body()).prop_map(|(id, t, tag, b)| Frame::ask(id, t, tag, b)),
        1 => frame(),
    ];
    (kinds, trace()).prop_map(|(mut frame, trace)| {
        frame.trace = trace;
        frame
    })
}

fn encoded(frame: &Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_frame(frame, &mut buf).expect("valid frame encodes");
    buf
}

/// Decodes until the decoder asks for more bytes or fails; the loop is bounded because every
/// `Some` consumes at least a header.
fn drain(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> Result<Vec<Frame>, ()> {
    let mut frames = Vec::new();
    loop {
        match decoder.decode(buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return Ok(frames),
            Err(_) => return Err(()),
        }
    }
}

/// Feeds `wire` to one decoder `chunk` bytes at a time and returns every frame, checking that
/// nothing is left over.
fn arrive_in_chunks(wire: &[u8], chunk: usize) -> Vec<Frame> {
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    for piece in wire.chunks(chunk) {
        buf.extend_from_slice(piece);
        decoded.extend(drain(&mut decoder, &mut buf).expect("no error on valid input"));
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    decoded
}

/// As [`drain`], through the borrowing decoder the transport reads with.
fn drain_ref(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> Result<Vec<Frame>, ()> {
    let mut frames = Vec::new();
    loop {
        match decoder.decode_ref(buf) {
            Ok(Some((frame, len))) => {
                frames.push(frame.to_frame());
                buf.advance(len);
            }
            Ok(None) => return Ok(frames),
            Err(_) => return Err(()),
        }
    }
}

proptest! {
    #[test]
    fn the_borrowing_decoder_agrees_with_the_owning_one(
        frames in proptest::collection::vec(lane_frame(), 1..6),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let mut wire = BytesMut::new();
        let mut headers = StreamHeaders::default();
        for frame in &frames {
            headers.encode_frame(frame, &mut wire).expect("encodes");
        }
        for (at, mask) in flips {
            let i = at.index(wire.len());
            wire[i] ^= mask;
        }
        let owned = drain(&mut FrameDecoder::default(), &mut wire.clone());
        let borrowed = drain_ref(&mut FrameDecoder::default(), &mut wire);
        prop_assert_eq!(borrowed, owned);
    }

    #[test]
    fn a_stream_of_frames_referring_to_its_target_and_tags_arrives_as_sent(
        frames in proptest::collection::vec(lane_frame(), 1..16),
        stated in proptest::collection::vec(any::<bool>(), 16),
        chunk in 1usize..64,
    ) {
        // Some frames stated in full, as a sender may mix in (a frame that waited for room).
        let mut wire = BytesMut::new();
        let mut headers = StreamHeaders::default();
        for (frame, stated) in frames.iter().zip(stated) {
            if stated {
                encode_frame(frame, &mut wire).expect("encodes");
            } else {
                headers.encode_frame(frame, &mut wire).expect("encodes");
            }
        }
        prop_assert_eq!(arrive_in_chunks(&wire, chunk), frames);
    }

    #[test]
    fn any_valid_frame_round_trips(frame in frame()) {
        let mut buf = encoded(&frame);
        prop_assert_eq!(buf.len(), 4 + frame.encoded_len());
        prop_assert_eq!(FrameDecoder::default().decode(&mut buf).expect("decodes"), Some(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn frames_arrive_in_order_whatever_the_chunking(
        frames in proptest::collection::vec(frame(), 1..8),
        chunk in 1usize..64,
    ) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            encode_frame(frame, &mut wire).expect("encodes");
        }
        prop_assert_eq!(arrive_in_chunks(&wire, chunk), frames);
    }

    #[test]
    fn truncated_valid_frame_only_asks_for_more(frame in frame(), cut in any::<prop::sample::Index>()) {
        let wire = encoded(&frame);
        let mut prefix = BytesMut::from(&wire[..cut.index(wire.len())]);
        prop_assert_eq!(FrameDecoder::default().decode(&mut prefix).expect("no error"), None);
    }

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        max in prop_oneof![Just(64usize), Just(4096), Just(actor_remote::codec::DEFAULT_MAX_FRAME_LEN)],
    ) {
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = drain(&mut FrameDecoder::new(max), &mut buf);
    }

    #[test]
    fn corrupted_valid_frames_never_panic(
        frame in frame(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
    ) {
        let mut buf = encoded(&frame);
        for (at, mask) in flips {
            let i = at.index(buf.len());
            buf[i] ^= mask;
        }
        let _ = drain(&mut FrameDecoder::default(), &mut buf);
    }

    #[test]
    fn random_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_body::<Control>(&bytes);
        let _ = decode_body::<(String, Vec<u64>, Option<bool>)>(&bytes);
    }
}

/// Every file the frame decoder's fuzzers keep: the seed corpus and past crashes.
fn fuzz_inputs() -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for dir in ["corpus/frame_decoder", "regressions/frame_decoder"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir)) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                let bytes = std::fs::read(&path).expect("readable fuzz input");
                inputs.push((path, bytes));
            }
        }
    }
    inputs.sort();
    inputs
}

/// Replays one input in the fuzz target's format (chunk size, frame-limit bit, then the
/// stream; see `fuzz/driver/src/lib.rs`): decodes it in chunks and re-encodes every frame.
/// Returns how many frames it held.
fn replay_fuzz_input(data: &[u8]) -> usize {
    let [chunk, limit, stream @ ..] = data else {
        return 0;
    };
    let max = if limit & 1 == 0 {
        256
    } else {
        DEFAULT_MAX_FRAME_LEN
    };
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut count = 0;
    for piece in stream.chunks(usize::from(*chunk).max(1)) {
        buf.extend_from_slice(piece);
        let Ok(frames) = drain(&mut decoder, &mut buf) else {
            break;
        };
        for frame in frames {
            let mut again = encoded(&frame);
            let back = FrameDecoder::new(FRAME_LEN_CEILING)
                .decode(&mut again)
                .expect("re-decodes");
            assert_eq!(back, Some(frame), "a decoded frame survives re-encoding");
            count += 1;
        }
    }
    count
}

#[test]
fn every_kept_fuzz_input_decodes_without_panic() {
    let inputs = fuzz_inputs();
    assert!(
        inputs.len() >= 20,
        "the seed corpus is in fuzz/corpus/frame_decoder ({} files found)",
        inputs.len()
    );
    let mut frames = 0;
    for (path, data) in &inputs {
        let replayed = std::panic::catch_unwind(|| replay_fuzz_input(data));
        frames += replayed.unwrap_or_else(|_| panic!("{} makes the codec panic", path.display()));
    }
    // The seeds hold valid frames of every kind: the format above is the one they were written in.
    assert!(frames >= 10, "only {frames} frames in the corpus");
}
