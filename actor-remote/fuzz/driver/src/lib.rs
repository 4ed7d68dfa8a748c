//! The properties actor-remote's fuzz targets check, shared by the libFuzzer targets
//! (`fuzz_targets/`) and the stable driver (`src/main.rs`), and the seed corpus they start from.
//!
//! # Input format of the `frame_decoder` target
//!
//! ```text
//! byte 0   chunk size the stream arrives in (0 means 1)
//! byte 1   bit 0: 0 = a 256-byte frame limit, 1 = the default limit (4 MiB)
//! rest     the bytes of one QUIC stream
//! ```
//!
//! The corpus files under `corpus/frame_decoder/` and the crash files under
//! `regressions/frame_decoder/` use this format; `tests/codec_props.rs` replays them in CI.

use std::collections::BTreeSet;
use std::hash::DefaultHasher;
use std::hash::{Hash, Hasher};

use actor_remote::codec::{
    Control, DEFAULT_MAX_FRAME_LEN, FRAME_LEN_CEILING, Frame, FrameDecoder, StreamHeaders, Target,
    TraceContext, encode_body, encode_frame,
};
use bytes::{Buf, Bytes, BytesMut};

/// The small frame limit an input can select: small enough that the fuzzer meets it often.
pub const SMALL_FRAME_LIMIT: usize = 256;

/// Decodes `data` (see the module docs for its format) and panics if a property fails:
///
/// - the decoder never panics, whatever the bytes and however they are chunked;
/// - it hands out the same frames, and stops with an error or not, whether the stream arrives
///   in chunks or all at once;
/// - the borrowing decoder (`decode_ref`, the one the transport reads with) accepts and refuses
///   exactly what the owning one does, frame for frame;
/// - every frame it accepts re-encodes (stating its target and tag in full, whatever its stream
///   referred to) to exactly `4 + encoded_len()` bytes that decode to the same frame.
///
/// Returns a hash of what happened (the set of frame shapes seen, how many frames, and the kind
/// of error), which the stable driver uses as a cheap stand-in for coverage.
pub fn frame_decoder(data: &[u8]) -> u64 {
    let [chunk, limit, stream @ ..] = data else {
        return 0;
    };
    let chunk = usize::from(*chunk).max(1);
    let max_frame_len = if limit & 1 == 0 {
        SMALL_FRAME_LIMIT
    } else {
        DEFAULT_MAX_FRAME_LEN
    };

    let (frames, error) = decode_in_chunks(stream, chunk, max_frame_len);
    let (whole, whole_error) = decode_in_chunks(stream, stream.len().max(1), max_frame_len);
    assert_eq!(frames, whole, "chunking changed the frames");
    assert_eq!(
        error, whole_error,
        "chunking changed whether the stream failed"
    );
    let (borrowed, borrowed_error) = decode_ref_whole(stream, max_frame_len);
    assert_eq!(borrowed, whole, "decode_ref disagrees with decode");
    assert_eq!(
        borrowed_error, whole_error,
        "decode_ref disagrees with decode on failure"
    );

    let mut shapes = BTreeSet::new();
    for frame in &frames {
        let mut again = BytesMut::new();
        encode_frame(frame, &mut again).expect("a decoded frame re-encodes");
        assert_eq!(again.len(), 4 + frame.encoded_len(), "encoded_len is exact");
        // Stated in full, a frame that referred to its stream's target and tag may be over the
        // limit it arrived under.
        let back = FrameDecoder::new(FRAME_LEN_CEILING)
            .decode(&mut again)
            .expect("a re-encoded frame decodes")
            .expect("a re-encoded frame is complete");
        assert_eq!(&back, frame, "a frame survives re-encoding");
        assert!(again.is_empty(), "re-decoding consumes the whole frame");
        shapes.insert((
            frame.kind.to_wire(),
            matches!(frame.target, Some(Target::Name(_))),
            frame.trace.is_some(),
            frame.body.is_empty(),
        ));
    }
    let mut outcome = DefaultHasher::new();
    (shapes, frames.len().min(3), error).hash(&mut outcome);
    outcome.finish()
}

/// Feeds `stream` to one decoder `chunk` bytes at a time; returns the frames handed out and, if
/// the stream failed, the kind of error.
fn decode_in_chunks(
    stream: &[u8],
    chunk: usize,
    max_frame_len: usize,
) -> (Vec<Frame>, Option<String>) {
    let mut decoder = FrameDecoder::new(max_frame_len);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                // A stream with a bad frame is closed by the transport: stop here too.
                Err(e) => return (frames, Some(error_kind(&e))),
            }
        }
    }
    (frames, None)
}

/// As [`decode_in_chunks`] with the whole stream at once, through the borrowing decoder.
fn decode_ref_whole(stream: &[u8], max_frame_len: usize) -> (Vec<Frame>, Option<String>) {
    let mut decoder = FrameDecoder::new(max_frame_len);
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    loop {
        match decoder.decode_ref(&mut buf) {
            Ok(Some((frame, len))) => {
                frames.push(frame.to_frame());
                buf.advance(len);
            }
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(error_kind(&e))),
        }
    }
}

/// The variant name of a codec error, without its fields.
fn error_kind(e: &actor_remote::codec::CodecError) -> String {
    let debug = format!("{e:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One seed of the corpus: a file name and its contents, in the target's input format.
pub struct Seed {
    /// File name under `corpus/frame_decoder/`.
    pub name: &'static str,
    /// The input.
    pub bytes: Vec<u8>,
}

/// The seed corpus: a few valid frames of each kind, a stream of several frames, truncated
/// frames, and the boundaries of the length checks. A few KB in all.
pub fn seeds() -> Vec<Seed> {
    let trace = TraceContext {
        trace_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        span_id: 0x8899_aabb_ccdd_eeff,
        flags: 1,
    };
    let tell = Frame::tell(
        Target::Name("products".into()),
        "shop.products.restock.v1",
        encode_body(&("sku-1", 12u32)).expect("seed body encodes"),
    );
    let ask = Frame::ask(
        7,
        Target::Name("products".into()),
        "shop.products.get_prices.v1",
        encode_body(&vec!["sku-1", "sku-2"]).expect("seed body encodes"),
    )
    .with_trace(trace);
    let ask_by_id = Frame::ask(u64::MAX, Target::Id(42), "t", Bytes::new());
    let reply = Frame::reply(
        7,
        encode_body(&vec![1999u64, 2499]).expect("seed body encodes"),
    );
    let error = Frame::error(
        7,
        encode_body(&("UnknownActor", "products")).expect("seed body encodes"),
    );
    let connection_error = Frame::error(0, Bytes::new());
    let control = |c: Control| Frame::control(&c).expect("control encodes");
    let ping = control(Control::Ping { nonce: 99 });
    let registry = control(Control::Registry(vec![0, 1, 2, 3]));
    let membership = control(Control::Membership(vec![0xab; 24])).with_trace(trace);
    let leaving = control(Control::Leaving);

    let wire = |frames: &[&Frame]| {
        let mut buf = BytesMut::new();
        for frame in frames {
            encode_frame(frame, &mut buf).expect("seed frame encodes");
        }
        buf.to_vec()
    };
    // Header: chunk size, limit bit (1 = default limit).
    let input = |chunk: u8, default_limit: bool, stream: &[u8]| {
        let mut bytes = vec![chunk, u8::from(default_limit)];
        bytes.extend_from_slice(stream);
        bytes
    };
    let whole = wire(&[&tell, &ask, &reply]);
    let mut seeds = vec![
        Seed {
            name: "tell_by_name",
            bytes: input(255, true, &wire(&[&tell])),
        },
        Seed {
            name: "ask_traced",
            bytes: input(255, true, &wire(&[&ask])),
        },
        Seed {
            name: "ask_by_id_empty_body",
            bytes: input(3, true, &wire(&[&ask_by_id])),
        },
        Seed {
            name: "reply",
            bytes: input(255, false, &wire(&[&reply])),
        },
        Seed {
            name: "error",
            bytes: input(255, false, &wire(&[&error])),
        },
        Seed {
            name: "error_not_an_answer",
            bytes: input(1, false, &wire(&[&connection_error])),
        },
        Seed {
            name: "control_ping",
            bytes: input(255, false, &wire(&[&ping])),
        },
        Seed {
            name: "control_registry",
            bytes: input(5, true, &wire(&[&registry])),
        },
        Seed {
            name: "control_membership_traced",
            bytes: input(255, true, &wire(&[&membership])),
        },
        Seed {
            name: "control_leaving",
            bytes: input(255, true, &wire(&[&leaving])),
        },
        Seed {
            name: "stream_of_three_in_chunks_of_7",
            bytes: input(7, true, &whole),
        },
        Seed {
            name: "truncated_prefix",
            bytes: input(255, true, &whole[..2]),
        },
        Seed {
            name: "truncated_header",
            bytes: input(255, true, &whole[..9]),
        },
        Seed {
            name: "truncated_body",
            bytes: input(255, true, &wire(&[&tell])[..wire(&[&tell]).len() - 3]),
        },
        Seed {
            name: "second_frame_truncated",
            bytes: input(16, true, &whole[..whole.len() - 5]),
        },
    ];
    // Length prefixes at the edges of the checks: below the smallest header, and above the
    // small limit.
    let mut short = wire(&[&leaving]);
    short[..4].copy_from_slice(&5u32.to_be_bytes());
    seeds.push(Seed {
        name: "length_below_minimum_header",
        bytes: input(255, true, &short),
    });
    let big = Frame::tell(Target::Id(1), "big", Bytes::from(vec![0x5a; 300]));
    seeds.push(Seed {
        name: "over_the_small_limit",
        bytes: input(64, false, &wire(&[&big])),
    });
    // One bad header byte each: kind, flags, target kind.
    for (name, at, value) in [
        ("unknown_kind", 4usize, 9u8),
        ("unknown_flags", 5, 0x80),
        ("unknown_target_kind", 7, 7),
    ] {
        let mut bad = wire(&[&tell]);
        bad[at] = value;
        seeds.push(Seed {
            name,
            bytes: input(255, true, &bad),
        });
    }
    // A lane's stream: the first frame states the target and remembers the tag, the later
    // ones refer to both.
    let mut headers = StreamHeaders::default();
    let mut lane = BytesMut::new();
    let second_ask = Frame::ask(
        8,
        Target::Name("products".into()),
        "shop.products.get_prices.v1",
        Bytes::new(),
    );
    for frame in [&tell, &tell, &ask, &second_ask] {
        headers
            .encode_frame(frame, &mut lane)
            .expect("seed frame encodes");
    }
    seeds.push(Seed {
        name: "stream_references",
        bytes: input(11, true, &lane),
    });
    seeds
}
