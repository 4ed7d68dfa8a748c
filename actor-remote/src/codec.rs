//! The wire codec: how a [`Frame`] becomes bytes on a QUIC stream and back.
//!
//! Everything here is a plain function over bytes (no sockets, no timers), so the transport layer
//! is a thin driver around it and the hard part can be tested and fuzzed on its own.
//!
//! # Wire layout
//!
//! ```text
//! u32  length of everything after this field (header + body), big-endian
//! u8   kind            1 tell, 2 ask, 3 reply, 4 error, 5 control
//! u8   flags           bit 0: a trace context follows the tag
//!                      bit 1: the tag is a reference (see below)
//!                      bit 2: the tag is remembered by the stream
//!                      bit 3: the target name is remembered by the stream; others must be 0
//!      correlation id  unsigned LEB128 varint, at most 10 bytes
//! u8   target kind     0 none, 1 name, 2 actor id, 3 the stream's target
//!      target          name: u16 length + UTF-8 bytes | actor id: u64 | otherwise nothing
//! u16  tag             its length, followed by the tag, UTF-8; with bit 1, the index of a tag
//!                      the stream remembered instead (nothing follows)
//!      trace context   when flagged: u128 trace id, u64 span id, u8 flags (25 bytes)
//!      body            the rest: a bincode 2 payload (see [`encode_body`])
//! ```
//!
//! # Stream references
//!
//! Most frames on a stream go to one actor with a handful of message types, so a stream
//! states each only once. A target name flagged "remembered" becomes the stream's target, which
//! target kind 3 then refers to. A tag flagged "remembered" takes the next index of the stream's tag table
//! (from 0, at most [`MAX_STREAM_TAGS`] of at most [`MAX_REMEMBERED_TAG_LEN`] bytes each, so a
//! stream's table stays small whatever the peer sends), and a later frame refers to it by that
//! index. The
//! sending side keeps its half of this state in [`StreamHeaders`]; [`FrameDecoder`] keeps the
//! receiving half, one per stream. A reference to a target or tag the stream has not stated is
//! an error. Frames encoded without a [`StreamHeaders`] ([`encode_frame`]) state everything
//! and remember nothing, so they can be written into any stream at any point.
//!
//! The hot paths use the borrowed form of a frame, [`FrameRef`]: a sender encodes a header and
//! serializes the body in place after it ([`StreamHeaders::encode_frame_with`]), and a reader
//! dispatches frames straight out of its buffer with [`FrameDecoder::decode_ref`], so neither
//! copies the target, the tag or the body per message. Both produce and accept exactly the
//! bytes of the owned [`Frame`] API.
//!
//! There is no per-frame version: the protocol version ([`PROTOCOL_VERSION`]) is agreed once, in
//! the handshake. Decoding is strict: every length is checked against the bytes that remain and
//! the frame length against [`FrameDecoder::max_frame_len`], unknown kinds, flags and target kinds
//! are errors, and each kind's header rules (below) are enforced on both encode and decode.
//!
//! | kind    | correlation id | target   | tag       |
//! | ------- | -------------- | -------- | --------- |
//! | tell    | 0              | required | non-empty |
//! | ask     | non-zero       | required | non-empty |
//! | reply   | non-zero       | none     | empty     |
//! | error   | any (0: not an answer to an ask) | none | empty |
//! | control | 0              | none     | empty     |
//!
//! # Example
//!
//! ```
//! use actor_remote::codec::{encode_frame, Frame, FrameDecoder, Target};
//! use bytes::{Bytes, BytesMut};
//!
//! let frame = Frame::tell(Target::Name("products".into()), "shop.products.restock.v1", Bytes::from_static(b"\x01"));
//! let mut wire = BytesMut::new();
//! encode_frame(&frame, &mut wire)?;
//!
//! let mut decoder = FrameDecoder::default();
//! assert_eq!(decoder.decode(&mut wire)?, Some(frame));
//! assert!(wire.is_empty());
//! # Ok::<(), actor_remote::codec::CodecError>(())
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The version of the wire protocol this crate speaks; checked once, in the handshake.
pub const PROTOCOL_VERSION: u16 = 2;

/// The default largest frame a node accepts: 4 MiB (the value of the length prefix).
pub const DEFAULT_MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// The largest `max_frame_len` a node may be configured with (64 MiB).
///
/// It is also the byte limit under which message bodies are (de)serialized, so a body that claims
/// a huge container is refused before anything is allocated for it.
pub const FRAME_LEN_CEILING: usize = 64 * 1024 * 1024;

/// Bytes of the length prefix in front of every frame.
const PREFIX_LEN: usize = 4;

/// The smallest possible header: kind, flags, correlation id (one byte), target kind, tag.
const MIN_HEADER_LEN: usize = 1 + 1 + 1 + 1 + 2;

/// The most tags one stream remembers (see [stream references](self#stream-references)).
pub const MAX_STREAM_TAGS: usize = 256;

/// The longest tag a stream remembers; a longer one is always stated in full.
pub const MAX_REMEMBERED_TAG_LEN: usize = 255;

/// The longest correlation id varint: 64 bits in 7-bit groups.
const MAX_VARINT_LEN: usize = 10;

/// Bytes of an encoded [`TraceContext`].
const TRACE_LEN: usize = 16 + 8 + 1;

const FLAG_TRACE: u8 = 0b0000_0001;
const FLAG_TAG_INDEX: u8 = 0b0000_0010;
const FLAG_TAG_REMEMBER: u8 = 0b0000_0100;
const FLAG_TARGET_REMEMBER: u8 = 0b0000_1000;
const KNOWN_FLAGS: u8 = FLAG_TRACE | FLAG_TAG_INDEX | FLAG_TAG_REMEMBER | FLAG_TARGET_REMEMBER;

const TARGET_NONE: u8 = 0;
const TARGET_NAME: u8 = 1;
const TARGET_ID: u8 = 2;
const TARGET_STREAM: u8 = 3;

/// What a frame is for; one byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A one-way message to a target (at-most-once).
    Tell,
    /// A request to a target that expects exactly one [`FrameKind::Reply`] or [`FrameKind::Error`].
    Ask,
    /// The successful answer to an ask, matched by correlation id.
    Reply,
    /// A failed answer to an ask (correlation id non-zero), or a connection-level error (zero).
    Error,
    /// Transport housekeeping between the two nodes; the body is a bincode [`Control`].
    Control,
}

impl FrameKind {
    /// The byte that stands for this kind on the wire.
    pub const fn to_wire(self) -> u8 {
        match self {
            FrameKind::Tell => 1,
            FrameKind::Ask => 2,
            FrameKind::Reply => 3,
            FrameKind::Error => 4,
            FrameKind::Control => 5,
        }
    }

    /// The kind a wire byte stands for.
    ///
    /// # Errors
    /// [`CodecError::UnknownKind`] for any byte that names no kind.
    pub fn from_wire(byte: u8) -> Result<Self, CodecError> {
        match byte {
            1 => Ok(FrameKind::Tell),
            2 => Ok(FrameKind::Ask),
            3 => Ok(FrameKind::Reply),
            4 => Ok(FrameKind::Error),
            5 => Ok(FrameKind::Control),
            other => Err(CodecError::UnknownKind(other)),
        }
    }
}

/// The actor a tell or ask is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A named actor (or group of actors) registered under this name on the receiving node.
    Name(String),
    /// A specific actor instance, by the id the receiving node gave it.
    Id(u64),
}

/// W3C trace context carried with a frame, so one request across several nodes is one trace.
///
/// Mirrors the `traceparent` header: a 128-bit trace id, the 64-bit id of the sending span and the
/// trace flags (bit 0: sampled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The id of the whole trace.
    pub trace_id: u128,
    /// The id of the span that sent the frame (the parent of the receiver's span).
    pub span_id: u64,
    /// W3C trace flags; bit 0 means sampled.
    pub flags: u8,
}

/// One unit on the wire: a header and an already-serialized body.
///
/// The constructors ([`Frame::tell`], [`Frame::ask`], [`Frame::reply`], [`Frame::error`],
/// [`Frame::control`]) build frames that satisfy the per-kind header rules in the
/// [module docs](self); [`encode_frame`] checks them for frames built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is for.
    pub kind: FrameKind,
    /// Matches a reply or error to its ask; 0 for tells and control frames.
    pub correlation_id: u64,
    /// The addressed actor: required for tells and asks, absent for everything else.
    pub target: Option<Target>,
    /// The stable message tag (`"shop.products.get_prices.v1"`); empty unless tell or ask.
    pub tag: String,
    /// Trace context of the sender, if it is being traced.
    pub trace: Option<TraceContext>,
    /// The bincode-serialized payload (see [`encode_body`]).
    pub body: Bytes,
}

impl Frame {
    /// A tell to `target` carrying a message with the given tag.
    pub fn tell(target: Target, tag: impl Into<String>, body: Bytes) -> Self {
        Frame {
            kind: FrameKind::Tell,
            correlation_id: 0,
            target: Some(target),
            tag: tag.into(),
            trace: None,
            body,
        }
    }

    /// An ask to `target`; `correlation_id` must be non-zero and unique among this sender's asks
    /// in flight on the connection.
    pub fn ask(correlation_id: u64, target: Target, tag: impl Into<String>, body: Bytes) -> Self {
        Frame {
            kind: FrameKind::Ask,
            correlation_id,
            target: Some(target),
            tag: tag.into(),
            trace: None,
            body,
        }
    }

    /// The successful reply to the ask with this correlation id.
    pub fn reply(correlation_id: u64, body: Bytes) -> Self {
        Frame {
            kind: FrameKind::Reply,
            correlation_id,
            target: None,
            tag: String::new(),
            trace: None,
            body,
        }
    }

    /// An error answer to the ask with this correlation id (0: not tied to an ask).
    pub fn error(correlation_id: u64, body: Bytes) -> Self {
        Frame {
            kind: FrameKind::Error,
            correlation_id,
            target: None,
            tag: String::new(),
            trace: None,
            body,
        }
    }

    /// A control frame carrying `message`.
    ///
    /// # Errors
    /// [`CodecError::BodyEncode`] if the message cannot be serialized.
    pub fn control(message: &Control) -> Result<Self, CodecError> {
        Ok(Frame {
            kind: FrameKind::Control,
            correlation_id: 0,
            target: None,
            tag: String::new(),
            trace: None,
            body: encode_body(message)?,
        })
    }

    /// The same frame, carrying `trace`.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The value the length prefix of this frame carries when encoded by [`encode_frame`]:
    /// header plus body, in bytes. Encoded through [`StreamHeaders`], referring to what its
    /// stream stated before, it may be shorter.
    ///
    /// A writer compares this with the peer's maximum frame length before sending, because a peer
    /// drops the whole connection on an oversized frame.
    pub fn encoded_len(&self) -> usize {
        self.as_frame_ref().encoded_len()
    }

    /// This frame, borrowed.
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        FrameRef {
            kind: self.kind,
            correlation_id: self.correlation_id,
            target: self.target.as_ref().map(|t| match t {
                Target::Name(name) => TargetRef::Name(name),
                Target::Id(id) => TargetRef::Id(*id),
            }),
            tag: &self.tag,
            trace: self.trace,
            body: &self.body,
        }
    }
}

/// The addressed actor of a [`FrameRef`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetRef<'a> {
    /// A named actor (see [`Target::Name`]).
    Name(&'a str),
    /// An actor instance (see [`Target::Id`]).
    Id(u64),
}

/// A [`Frame`] whose strings and body are borrowed: what [`FrameDecoder::decode_ref`] hands
/// out and [`encode_frame_ref`] takes, so the hot paths copy nothing per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// What the frame is for.
    pub kind: FrameKind,
    /// As [`Frame::correlation_id`].
    pub correlation_id: u64,
    /// As [`Frame::target`].
    pub target: Option<TargetRef<'a>>,
    /// As [`Frame::tag`].
    pub tag: &'a str,
    /// As [`Frame::trace`].
    pub trace: Option<TraceContext>,
    /// As [`Frame::body`].
    pub body: &'a [u8],
}

impl FrameRef<'_> {
    /// As [`Frame::encoded_len`].
    pub fn encoded_len(&self) -> usize {
        let target = match self.target {
            None => 0,
            Some(TargetRef::Name(name)) => 2 + name.len(),
            Some(TargetRef::Id(_)) => 8,
        };
        let trace = if self.trace.is_some() { TRACE_LEN } else { 0 };
        MIN_HEADER_LEN - 1
            + varint_len(self.correlation_id)
            + target
            + self.tag.len()
            + trace
            + self.body.len()
    }

    /// An owned copy (strings and body copied).
    pub fn to_frame(&self) -> Frame {
        self.to_owned_with_body(Bytes::copy_from_slice(self.body))
    }

    /// An owned copy carrying `body` (which the caller took from the same bytes).
    fn to_owned_with_body(self, body: Bytes) -> Frame {
        Frame {
            kind: self.kind,
            correlation_id: self.correlation_id,
            target: self.target.map(|t| match t {
                TargetRef::Name(name) => Target::Name(name.to_string()),
                TargetRef::Id(id) => Target::Id(id),
            }),
            tag: self.tag.to_string(),
            trace: self.trace,
            body,
        }
    }

    /// Checks the per-kind header rules from the module docs.
    fn check_rules(&self) -> Result<(), CodecError> {
        let kind = self.kind;
        let fail = |reason| Err(CodecError::InvalidHeader { kind, reason });
        let has_target = self.target.is_some();
        match kind {
            FrameKind::Tell | FrameKind::Ask => {
                if kind == FrameKind::Tell && self.correlation_id != 0 {
                    return fail("a tell must have correlation id 0");
                }
                if kind == FrameKind::Ask && self.correlation_id == 0 {
                    return fail("an ask needs a non-zero correlation id");
                }
                if !has_target {
                    return fail("a tell or ask needs a target");
                }
                if self.tag.is_empty() {
                    return fail("a tell or ask needs a message tag");
                }
            }
            FrameKind::Reply | FrameKind::Error | FrameKind::Control => {
                if kind == FrameKind::Reply && self.correlation_id == 0 {
                    return fail("a reply needs a non-zero correlation id");
                }
                if kind == FrameKind::Control && self.correlation_id != 0 {
                    return fail("a control frame must have correlation id 0");
                }
                if has_target {
                    return fail("only tells and asks have a target");
                }
                if !self.tag.is_empty() {
                    return fail("only tells and asks have a tag");
                }
            }
        }
        Ok(())
    }
}

/// Transport housekeeping carried in the body of a [`FrameKind::Control`] frame.
///
/// The handshake (see [`crate::auth`]) is not part of this: it runs before any frame is accepted.
/// Variants are encoded by index, so adding, removing or reordering one changes the wire format
/// and needs a [`PROTOCOL_VERSION`] bump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Liveness probe; the peer answers with a [`Control::Pong`] carrying the same nonce.
    Ping {
        /// Chosen by the sender to match the answer.
        nonce: u64,
    },
    /// The answer to a [`Control::Ping`].
    Pong {
        /// The nonce of the ping being answered.
        nonce: u64,
    },
    /// The sender is leaving the cluster gracefully: send it no new work.
    Leaving,
    /// An opaque packet of the membership (gossip) library, carried over the authenticated
    /// transport.
    Membership(Vec<u8>),
    /// The sender's full registry: the names it serves and the topics it has subscribers for
    /// (an encoded `cluster::Announcement`). Each replaces the previous one from that node.
    Registry(Vec<u8>),
}

/// Everything that can go wrong turning frames or bodies into bytes and back.
///
/// After any error from [`FrameDecoder::decode`] the stream is no longer trustworthy: the caller
/// closes it (the design says: disconnect the peer with a QUIC error code and log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The frame's length prefix exceeds the configured maximum (or a frame to encode exceeds
    /// what the length prefix can carry).
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The length the frame claims (or has).
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The length prefix is too small to hold even the fixed part of a header.
    #[error("frame length {len} is below the minimum header size of {min} bytes")]
    BadLength {
        /// The length the frame claims.
        len: usize,
        /// The smallest valid frame length.
        min: usize,
    },
    /// A header field runs past the end of its frame.
    #[error("frame header truncated while reading the {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The kind byte names no [`FrameKind`].
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The flags byte has bits set that this protocol version does not define.
    #[error("unknown frame flags {0:#010b}")]
    UnknownFlags(u8),
    /// The target-kind byte names no kind of target.
    #[error("unknown target kind {0}")]
    UnknownTargetKind(u8),
    /// A string field is not valid UTF-8.
    #[error("the {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field that failed.
        field: &'static str,
    },
    /// A string field is longer than its u16 length prefix can describe.
    #[error("the {field} is {len} bytes long; at most {max} fit in a frame")]
    FieldTooLong {
        /// The field that is too long.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// The header breaks a rule of its kind (see the module docs).
    #[error("invalid {kind:?} frame: {reason}")]
    InvalidHeader {
        /// The kind of the offending frame.
        kind: FrameKind,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// The correlation id varint runs over 10 bytes or 64 bits.
    #[error("the correlation id is not a valid varint")]
    BadVarint,
    /// A frame refers to a target or tag its stream has not stated (see
    /// [stream references](self#stream-references)).
    #[error("the {field} refers to nothing stated earlier on the stream")]
    UnknownReference {
        /// `"target"` or `"tag"`.
        field: &'static str,
    },
    /// A stream asked to remember more than [`MAX_STREAM_TAGS`] tags.
    #[error("a stream remembers at most {max} tags")]
    TooManyTags {
        /// [`MAX_STREAM_TAGS`].
        max: usize,
    },
    /// A message body could not be serialized.
    #[error("cannot encode message body: {0}")]
    BodyEncode(#[source] bincode::error::EncodeError),
    /// A message body could not be deserialized into the expected type.
    #[error("cannot decode message body: {0}")]
    BodyDecode(#[source] bincode::error::DecodeError),
    /// A message body decoded, but bytes were left over.
    #[error("message body has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// How many bytes were not consumed.
        extra: usize,
    },
}

/// Appends `frame`, length prefix included, to `dst`.
///
/// Appending lets a writer batch several frames into one buffer and one write. The frame limit of
/// the receiving peer is not known here: compare [`Frame::encoded_len`] with it first.
///
/// # Errors
/// [`CodecError::InvalidHeader`] if the frame breaks its kind's rules,
/// [`CodecError::FieldTooLong`] if the target name or tag exceeds 65,535 bytes, and
/// [`CodecError::FrameTooLarge`] if the frame exceeds what the u32 length prefix can carry.
/// On error nothing is appended.
pub fn encode_frame(frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
    encode_frame_ref(&frame.as_frame_ref(), dst)
}

/// Appends a borrowed frame, length prefix included, to `dst`: the same bytes and errors as
/// [`encode_frame`], for a sender that keeps the target and tag elsewhere (a lane knows its
/// target; a tag is `&'static str`) and so builds no owned [`Frame`] per message.
///
/// # Errors
/// As [`encode_frame`]; on error nothing is appended.
pub fn encode_frame_ref(frame: &FrameRef<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
    write_frame(frame, HeaderForm::STATED, dst)
}

/// How a header states its target and tag on its stream.
#[derive(Debug, Clone, Copy)]
struct HeaderForm {
    target: TargetForm,
    tag: TagForm,
}

#[derive(Debug, Clone, Copy)]
enum TargetForm {
    Stated,
    Remembered,
    /// Target kind 3 instead of the name.
    Stream,
}

#[derive(Debug, Clone, Copy)]
enum TagForm {
    Stated,
    Remembered,
    Index(u16),
}

impl HeaderForm {
    const STATED: HeaderForm = HeaderForm {
        target: TargetForm::Stated,
        tag: TagForm::Stated,
    };
}

/// Appends `frame` with its target and tag in `form`; nothing on error.
fn write_frame(
    frame: &FrameRef<'_>,
    form: HeaderForm,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    frame.check_rules()?;
    if let Some(TargetRef::Name(name)) = frame.target {
        check_u16_len("target name", name.len())?;
    }
    check_u16_len("tag", frame.tag.len())?;
    let len = frame.encoded_len();
    let prefix = u32::try_from(len).map_err(|_| CodecError::FrameTooLarge {
        len,
        max: u32::MAX as usize,
    })?;

    let start = dst.len();
    dst.reserve(PREFIX_LEN + len);
    dst.put_u32(prefix);
    dst.put_u8(frame.kind.to_wire());
    let mut flags = if frame.trace.is_some() { FLAG_TRACE } else { 0 };
    flags |= match form.tag {
        TagForm::Stated => 0,
        TagForm::Remembered => FLAG_TAG_REMEMBER,
        TagForm::Index(_) => FLAG_TAG_INDEX,
    };
    let name_target = matches!(frame.target, Some(TargetRef::Name(_)));
    if name_target && matches!(form.target, TargetForm::Remembered) {
        flags |= FLAG_TARGET_REMEMBER;
    }
    dst.put_u8(flags);
    put_varint(dst, frame.correlation_id);
    match frame.target {
        None => dst.put_u8(TARGET_NONE),
        Some(TargetRef::Name(_)) if matches!(form.target, TargetForm::Stream) => {
            dst.put_u8(TARGET_STREAM);
        }
        Some(TargetRef::Name(name)) => {
            dst.put_u8(TARGET_NAME);
            put_str(dst, name);
        }
        Some(TargetRef::Id(id)) => {
            dst.put_u8(TARGET_ID);
            dst.put_u64(id);
        }
    }
    match form.tag {
        TagForm::Index(i) => dst.put_u16(i),
        TagForm::Stated | TagForm::Remembered => put_str(dst, frame.tag),
    }
    if let Some(trace) = &frame.trace {
        dst.put_u128(trace.trace_id);
        dst.put_u64(trace.span_id);
        dst.put_u8(trace.flags);
    }
    dst.put_slice(frame.body);
    // A shorter header than the stated one: patch the prefix.
    let written = dst.len() - start - PREFIX_LEN;
    if written != len {
        let prefix = u32::try_from(written).unwrap_or(prefix);
        dst[start..start + PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
    }
    Ok(())
}

/// Appends a frame whose body `write_body` appends to `dst` straight after the header, so the
/// body is encoded in place rather than built apart and copied. The frame is at most `max_len`
/// (the value of its length prefix). `header.body` must be empty. States its target and tag in
/// full, like [`encode_frame`].
///
/// On any error `dst` is left as it was.
///
/// # Errors
/// As [`encode_frame_ref`]; [`CodecError::FrameTooLarge`] when the frame exceeds `max_len`;
/// and whatever `write_body` returns.
pub fn encode_frame_with(
    header: &FrameRef<'_>,
    max_len: usize,
    dst: &mut BytesMut,
    write_body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    write_frame_with(header, HeaderForm::STATED, max_len, dst, write_body)
}

fn write_frame_with(
    header: &FrameRef<'_>,
    form: HeaderForm,
    max_len: usize,
    dst: &mut BytesMut,
    write_body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let start = dst.len();
    let written = write_frame(header, form, dst).and_then(|()| write_body(dst));
    finish_frame(start, max_len, dst, written)
}

/// Ends the frame that starts at `start` in `dst` once its body was `written`: sets its
/// length prefix if it is sound and at most `max_len`, or else takes it out again.
fn finish_frame(
    start: usize,
    max_len: usize,
    dst: &mut BytesMut,
    written: Result<(), CodecError>,
) -> Result<(), CodecError> {
    let len = dst.len().saturating_sub(start + PREFIX_LEN);
    let checked = written.and_then(|()| match u32::try_from(len) {
        Ok(prefix) if len <= max_len => Ok(prefix),
        _ => Err(CodecError::FrameTooLarge { len, max: max_len }),
    });
    match checked {
        Ok(prefix) => {
            dst[start..start + PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

/// The sending half of a stream's [references](self#stream-references): what the receiving
/// decoder already knows, so that later frames refer to it instead of repeating it.
///
/// Keep one per stream, and encode every frame of that stream through it in the order the
/// frames are written (frames encoded without it, by [`encode_frame`], may be mixed in).
#[derive(Debug)]
pub struct StreamHeaders {
    /// Tells this stream's state apart from every other's, for [`TellHeader`]s.
    id: u64,
    /// Changes whenever the stream's target does: a [`TellHeader`] holds while it is the same.
    generation: u64,
    /// The last name target stated on the stream.
    target: Option<String>,
    /// The remembered tags, by index.
    tags: Vec<String>,
}

/// The header of an untraced tell whose target and tag its stream both refers to: six bytes
/// that stay the same for every such tell, for as long as the stream's target does.
///
/// A sender that tells the same message type to the same name keeps the one that
/// [`StreamHeaders::encode_tell_with`] gave it and passes it back with the next tell, which
/// then copies it rather than working it out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TellHeader {
    stream: u64,
    generation: u64,
    tag: u16,
}

/// Bytes of the header of a tell that refers to its stream's target and tag (see
/// [`TellHeader`]): [`TELL_REFERRING`] and the tag's index.
const HEADER_OF_TELL: usize = 6;

/// How the header of such a tell starts: kind, flags (the tag is an index), correlation id 0,
/// target kind "the stream's target".
const TELL_REFERRING: [u8; 4] = [FrameKind::Tell.to_wire(), FLAG_TAG_INDEX, 0, TARGET_STREAM];

impl TellHeader {
    /// The header's bytes, after the length prefix.
    fn bytes(self) -> [u8; HEADER_OF_TELL] {
        let [t0, t1, t2, t3] = TELL_REFERRING;
        let [hi, lo] = self.tag.to_be_bytes();
        [t0, t1, t2, t3, hi, lo]
    }

    /// The tag index of a frame (after its length prefix) whose header has exactly this
    /// shape, whatever the stream's state.
    fn tag_of(frame: &[u8]) -> Option<u16> {
        let &[kind, flags, id, target, hi, lo] = frame.first_chunk::<HEADER_OF_TELL>()?;
        ([kind, flags, id, target] == TELL_REFERRING).then_some(u16::from_be_bytes([hi, lo]))
    }
}

impl Default for StreamHeaders {
    fn default() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        StreamHeaders {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            generation: 0,
            target: None,
            tags: Vec::new(),
        }
    }
}

impl Clone for StreamHeaders {
    /// The same state under an identity of its own: a [`TellHeader`] of one does not hold
    /// for the other, whose state may go another way.
    fn clone(&self) -> Self {
        StreamHeaders {
            target: self.target.clone(),
            tags: self.tags.clone(),
            ..StreamHeaders::default()
        }
    }
}

impl StreamHeaders {
    /// Appends an untraced tell to `target` of a message tagged `tag`, as
    /// [`encode_frame_with`](Self::encode_frame_with) does, and returns its header if the
    /// stream refers to both target and tag.
    ///
    /// Pass that header back (`held`) with the next tell to the same target with the same
    /// tag: while the stream's target stays the same, the header is copied rather than
    /// worked out again. A header of another stream, or one the stream has moved on from,
    /// is not used. A header held for another target or tag would send the frame there:
    /// keep one per target and message type.
    ///
    /// # Errors
    /// As [`encode_frame_with`](Self::encode_frame_with); nothing changes then.
    pub fn encode_tell_with(
        &mut self,
        held: Option<TellHeader>,
        target: &str,
        tag: &str,
        max_len: usize,
        dst: &mut BytesMut,
        write_body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<Option<TellHeader>, CodecError> {
        if let Some(held) = held.filter(|h| h.stream == self.id && h.generation == self.generation)
        {
            debug_assert_eq!(
                self.target.as_deref(),
                Some(target),
                "held for another target"
            );
            debug_assert_eq!(
                self.tags.get(usize::from(held.tag)).map(String::as_str),
                Some(tag),
                "held for another tag"
            );
            let start = dst.len();
            let mut head = [0u8; PREFIX_LEN + HEADER_OF_TELL];
            head[PREFIX_LEN..].copy_from_slice(&held.bytes());
            dst.extend_from_slice(&head);
            let written = write_body(dst);
            finish_frame(start, max_len, dst, written)?;
            return Ok(Some(held));
        }
        let header = FrameRef {
            kind: FrameKind::Tell,
            correlation_id: 0,
            target: Some(TargetRef::Name(target)),
            tag,
            trace: None,
            body: &[],
        };
        let form = self.encode_referring(&header, max_len, dst, write_body)?;
        Ok(match form {
            HeaderForm {
                target: TargetForm::Stream,
                tag: TagForm::Index(tag),
            } => Some(TellHeader {
                stream: self.id,
                generation: self.generation,
                tag,
            }),
            _ => None,
        })
    }

    /// As [`encode_frame`], referring to the stream's target and tags where it can (see
    /// [`encode_frame_with`](Self::encode_frame_with)).
    ///
    /// # Errors
    /// As [`encode_frame`].
    pub fn encode_frame(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let header = FrameRef {
            body: &[],
            ..frame.as_frame_ref()
        };
        self.encode_frame_with(&header, u32::MAX as usize, dst, |dst| {
            dst.extend_from_slice(&frame.body);
            Ok(())
        })
    }

    /// As [`encode_frame_with`], referring to the stream's target and tags where it can and
    /// remembering new tags while the table has room. On error neither `dst` nor the stream's
    /// state changes.
    ///
    /// # Errors
    /// As [`encode_frame_with`].
    pub fn encode_frame_with(
        &mut self,
        header: &FrameRef<'_>,
        max_len: usize,
        dst: &mut BytesMut,
        write_body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        self.encode_referring(header, max_len, dst, write_body)
            .map(drop)
    }

    /// [`encode_frame_with`](Self::encode_frame_with), saying how the header was stated.
    fn encode_referring(
        &mut self,
        header: &FrameRef<'_>,
        max_len: usize,
        dst: &mut BytesMut,
        write_body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<HeaderForm, CodecError> {
        let name = match header.target {
            Some(TargetRef::Name(name)) => Some(name),
            _ => None,
        };
        let target = match name {
            Some(_) if self.target.as_deref() == name => TargetForm::Stream,
            Some(_) => TargetForm::Remembered,
            None => TargetForm::Stated,
        };
        let tag = if header.tag.is_empty() {
            TagForm::Stated
        } else {
            match self.tags.iter().position(|t| t == header.tag) {
                Some(i) => TagForm::Index(u16::try_from(i).unwrap_or(u16::MAX)),
                None if self.tags.len() < MAX_STREAM_TAGS
                    && header.tag.len() <= MAX_REMEMBERED_TAG_LEN =>
                {
                    TagForm::Remembered
                }
                None => TagForm::Stated,
            }
        };
        let form = HeaderForm { target, tag };
        write_frame_with(header, form, max_len, dst, write_body)?;
        if let (Some(name), TargetForm::Remembered) = (name, target) {
            self.target = Some(name.to_string());
            self.generation += 1;
        }
        if let TagForm::Remembered = tag {
            self.tags.push(header.tag.to_string());
        }
        Ok(form)
    }
}

/// Appends `value` as an unsigned LEB128 varint.
fn put_varint(dst: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        dst.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    dst.put_u8(value as u8);
}

fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

fn check_u16_len(field: &'static str, len: usize) -> Result<(), CodecError> {
    if len > usize::from(u16::MAX) {
        return Err(CodecError::FieldTooLong {
            field,
            len,
            max: usize::from(u16::MAX),
        });
    }
    Ok(())
}

/// Writes a string whose length was checked to fit a u16.
fn put_str(dst: &mut BytesMut, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    dst.put_u16(len);
    dst.put_slice(s.as_bytes());
}

/// Splits a byte stream back into frames.
///
/// Feed it the bytes read so far; it hands out one frame per call as soon as one is complete and
/// leaves the rest in the buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    /// The largest length prefix accepted. A larger one is refused as soon as the prefix arrives,
    /// before any of the body is buffered.
    pub max_frame_len: usize,
    /// What the stream stated so far, for the frames that refer to it.
    stream: StreamState,
}

/// The receiving half of a stream's [references](self#stream-references).
#[derive(Debug, Clone, Default)]
struct StreamState {
    target: Option<String>,
    tags: Vec<String>,
}

impl StreamState {
    /// The frame in `bytes`, whose header is that of an untraced tell referring to the
    /// stream's target and to its tag `tag` ([`TellHeader::tag_of`], what most frames of a
    /// busy stream are): the frame, or the error, [`resolve`](Self::resolve) makes of it,
    /// without parsing the header field by field.
    fn referring_tell<'a>(&'a self, tag: u16, bytes: &'a [u8]) -> Result<FrameRef<'a>, CodecError> {
        let unknown = |field| CodecError::UnknownReference { field };
        Ok(FrameRef {
            kind: FrameKind::Tell,
            correlation_id: 0,
            target: Some(TargetRef::Name(
                self.target.as_deref().ok_or(unknown("target"))?,
            )),
            tag: self.tags.get(usize::from(tag)).ok_or(unknown("tag"))?,
            trace: None,
            body: bytes.get(HEADER_OF_TELL..).unwrap_or_default(),
        })
    }

    /// Records what `raw` states, then resolves what it refers to.
    fn resolve<'a>(&'a mut self, raw: RawFrame<'a>) -> Result<FrameRef<'a>, CodecError> {
        if let RawTarget::Remembered(name) = raw.target {
            if self.target.as_deref() != Some(name) {
                self.target = Some(name.to_owned());
            }
        }
        if let RawTag::Remembered(tag) = raw.tag {
            if tag.is_empty() {
                return Err(CodecError::InvalidHeader {
                    kind: raw.kind,
                    reason: "a remembered tag cannot be empty",
                });
            }
            if tag.len() > MAX_REMEMBERED_TAG_LEN {
                return Err(CodecError::FieldTooLong {
                    field: "remembered tag",
                    len: tag.len(),
                    max: MAX_REMEMBERED_TAG_LEN,
                });
            }
            if self.tags.len() >= MAX_STREAM_TAGS {
                return Err(CodecError::TooManyTags {
                    max: MAX_STREAM_TAGS,
                });
            }
            self.tags.push(tag.to_owned());
        }
        let this: &'a StreamState = self;
        let target = match raw.target {
            RawTarget::None => None,
            RawTarget::Name(name) | RawTarget::Remembered(name) => Some(TargetRef::Name(name)),
            RawTarget::Id(id) => Some(TargetRef::Id(id)),
            RawTarget::Stream => match &this.target {
                Some(name) => Some(TargetRef::Name(name)),
                None => return Err(CodecError::UnknownReference { field: "target" }),
            },
        };
        let tag = match raw.tag {
            RawTag::Stated(tag) | RawTag::Remembered(tag) => tag,
            RawTag::Index(i) => match this.tags.get(usize::from(i)) {
                Some(tag) => tag,
                None => return Err(CodecError::UnknownReference { field: "tag" }),
            },
        };
        let frame = FrameRef {
            kind: raw.kind,
            correlation_id: raw.correlation_id,
            target,
            tag,
            trace: raw.trace,
            body: raw.body,
        };
        frame.check_rules()?;
        Ok(frame)
    }
}

impl Default for FrameDecoder {
    /// A decoder with [`DEFAULT_MAX_FRAME_LEN`].
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that accepts frames up to `max_frame_len` bytes (the length-prefix value).
    pub fn new(max_frame_len: usize) -> Self {
        FrameDecoder {
            max_frame_len,
            stream: StreamState::default(),
        }
    }

    /// Takes the next complete frame out of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame (having reserved room for
    /// the rest once the length is known and accepted), and `Ok(Some(frame))` after consuming
    /// exactly that frame's bytes. The body shares `buf`'s allocation; nothing is copied.
    ///
    /// # Errors
    /// [`CodecError::FrameTooLarge`] as soon as the length prefix exceeds
    /// [`max_frame_len`](Self::max_frame_len) (nothing is consumed), [`CodecError::BadLength`]
    /// for a prefix too small for a header, and the header errors of [`CodecError`] for a
    /// malformed frame (whose bytes are consumed). Any error means the stream must be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let Some(total) = self.complete_len(buf)? else {
            return Ok(None);
        };
        let mut bytes = buf.split_to(total).freeze();
        bytes.advance(PREFIX_LEN);
        let frame = self.stream.resolve(parse_frame(&bytes)?)?;
        let body_at = bytes.len() - frame.body.len();
        let frame = frame.to_owned_with_body(bytes.slice(body_at..));
        Ok(Some(frame))
    }

    /// The next complete frame in `buf`, borrowed from it, and how many bytes of `buf` it
    /// spans (length prefix included): the caller consumes them once done with the frame.
    ///
    /// This is [`decode`](Self::decode) without building an owned [`Frame`]: a reader that
    /// dispatches each frame at once allocates nothing per frame. `Ok(None)` when `buf` does
    /// not yet hold a whole frame (room for the rest is reserved once the length is accepted).
    ///
    /// Like [`decode`](Self::decode), it records what the frame states for its stream
    /// ([references](self#stream-references)): consume the frame's bytes before the next call,
    /// or the same frame is recorded twice.
    ///
    /// # Errors
    /// As [`decode`](Self::decode), except that no bytes are consumed; any error means the
    /// stream must be closed.
    pub fn decode_ref<'b>(
        &'b mut self,
        buf: &'b mut BytesMut,
    ) -> Result<Option<(FrameRef<'b>, usize)>, CodecError> {
        let Some(total) = self.complete_len(buf)? else {
            return Ok(None);
        };
        let bytes = &buf[PREFIX_LEN..total];
        let frame = match TellHeader::tag_of(bytes) {
            Some(tag) => self.stream.referring_tell(tag, bytes)?,
            None => self.stream.resolve(parse_frame(bytes)?)?,
        };
        Ok(Some((frame, total)))
    }

    /// The bytes a complete frame at the front of `buf` spans, prefix included; `None` (with
    /// room reserved) while incomplete.
    fn complete_len(&self, buf: &mut BytesMut) -> Result<Option<usize>, CodecError> {
        let Some(prefix) = buf.first_chunk::<PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
        if len > self.max_frame_len {
            return Err(CodecError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        if len < MIN_HEADER_LEN {
            return Err(CodecError::BadLength {
                len,
                min: MIN_HEADER_LEN,
            });
        }
        let total = PREFIX_LEN + len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        Ok(Some(total))
    }
}

/// A frame's header as written, before the stream's references are resolved.
struct RawFrame<'a> {
    kind: FrameKind,
    correlation_id: u64,
    target: RawTarget<'a>,
    tag: RawTag<'a>,
    trace: Option<TraceContext>,
    body: &'a [u8],
}

enum RawTarget<'a> {
    None,
    Name(&'a str),
    Remembered(&'a str),
    Id(u64),
    Stream,
}

enum RawTag<'a> {
    Stated(&'a str),
    Remembered(&'a str),
    Index(u16),
}

/// Parses one frame (without its length prefix), borrowing its strings and body.
fn parse_frame(bytes: &[u8]) -> Result<RawFrame<'_>, CodecError> {
    let mut r = HeaderReader { bytes, pos: 0 };
    let kind = FrameKind::from_wire(r.u8("frame kind")?)?;
    let flags = r.u8("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(CodecError::UnknownFlags(flags));
    }
    if flags & FLAG_TAG_INDEX != 0 && flags & FLAG_TAG_REMEMBER != 0 {
        return Err(CodecError::InvalidHeader {
            kind,
            reason: "a tag is either a reference or remembered, not both",
        });
    }
    let correlation_id = r.varint()?;
    let target = match r.u8("target kind")? {
        TARGET_NONE => RawTarget::None,
        TARGET_NAME if flags & FLAG_TARGET_REMEMBER != 0 => {
            RawTarget::Remembered(r.str("target name")?)
        }
        TARGET_NAME => RawTarget::Name(r.str("target name")?),
        _ if flags & FLAG_TARGET_REMEMBER != 0 => {
            return Err(CodecError::InvalidHeader {
                kind,
                reason: "only a target name can be remembered",
            });
        }
        TARGET_ID => RawTarget::Id(r.u64("target id")?),
        TARGET_STREAM => RawTarget::Stream,
        other => return Err(CodecError::UnknownTargetKind(other)),
    };
    let tag = if flags & FLAG_TAG_INDEX != 0 {
        RawTag::Index(u16::from_be_bytes(r.array("tag")?))
    } else if flags & FLAG_TAG_REMEMBER != 0 {
        RawTag::Remembered(r.str("tag")?)
    } else {
        RawTag::Stated(r.str("tag")?)
    };
    let trace = if flags & FLAG_TRACE != 0 {
        Some(TraceContext {
            trace_id: u128::from_be_bytes(r.array("trace id")?),
            span_id: r.u64("span id")?,
            flags: r.u8("trace flags")?,
        })
    } else {
        None
    };
    Ok(RawFrame {
        kind,
        correlation_id,
        target,
        tag,
        trace,
        body: &bytes[r.pos..],
    })
}

/// A cursor over a frame's header that never reads past the frame.
struct HeaderReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> HeaderReader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        // Not `ok_or(..)`: that builds (and drops) the error on every field read.
        let Some(end) = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
        else {
            return Err(CodecError::Truncated { field });
        };
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// An unsigned LEB128 varint of at most 64 bits (the correlation id).
    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let byte = self.u8("correlation id")?;
            // The tenth byte holds the 64th bit alone.
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(CodecError::BadVarint);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::BadVarint)
    }

    fn str(&mut self, field: &'static str) -> Result<&'a str, CodecError> {
        let len = u16::from_be_bytes(self.array(field)?);
        let raw = self.take(usize::from(len), field)?;
        std::str::from_utf8(raw).map_err(|_| CodecError::InvalidUtf8 { field })
    }
}

/// The bincode configuration for message bodies: standard (varint) encoding, and a byte limit so
/// a body that claims a huge string or container is refused before anything is allocated.
fn body_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<FRAME_LEN_CEILING>()
}

/// Serializes a message body with bincode 2 (standard configuration).
///
/// # Errors
/// [`CodecError::BodyEncode`] if serde fails, or the body exceeds [`FRAME_LEN_CEILING`].
pub fn encode_body<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, CodecError> {
    // Most bodies are small: encode on the stack and allocate once, at the exact size, rather
    // than let a Vec grow (and reallocate) byte by byte.
    let mut scratch = [0u8; SMALL_BODY];
    match bincode::serde::encode_into_slice(value, &mut scratch, body_config()) {
        Ok(len) => Ok(Bytes::copy_from_slice(&scratch[..len])),
        Err(bincode::error::EncodeError::UnexpectedEnd) => {
            bincode::serde::encode_to_vec(value, body_config())
                .map(Bytes::from)
                .map_err(CodecError::BodyEncode)
        }
        Err(e) => Err(CodecError::BodyEncode(e)),
    }
}

/// Serializes a message body as [`encode_body`] does, appending it to `dst`.
///
/// # Errors
/// As [`encode_body`]; `dst` is then left as it was.
pub fn encode_body_into<T: Serialize + ?Sized>(
    value: &T,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    let start = dst.len();
    let mut writer = BufWriter(dst);
    bincode::serde::encode_into_writer(value, &mut writer, body_config()).map_err(|e| {
        writer.0.truncate(start);
        CodecError::BodyEncode(e)
    })
}

/// Lets bincode append to a `BytesMut`.
struct BufWriter<'a>(&'a mut BytesMut);

impl bincode::enc::write::Writer for BufWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Bodies up to this size are encoded on the stack first (see [`encode_body`]).
const SMALL_BODY: usize = 256;

/// Deserializes a message body written by [`encode_body`]. Never panics, whatever the bytes.
///
/// # Errors
/// [`CodecError::BodyDecode`] if the bytes are not a valid `T`, and
/// [`CodecError::TrailingBytes`] if bytes remain after it.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice::<T, _>(bytes, body_config())
        .map_err(CodecError::BodyDecode)?;
    match bytes.len().saturating_sub(read) {
        0 => Ok(value),
        extra => Err(CodecError::TrailingBytes { extra }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(frame: &Frame) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_frame(frame, &mut buf).expect("valid frame encodes");
        buf
    }

    fn decode_all(buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        FrameDecoder::default().decode(buf)
    }

    fn trace() -> TraceContext {
        TraceContext {
            trace_id: 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c,
            span_id: 0xb7ad_6b71_6920_3331,
            flags: 1,
        }
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::tell(
                Target::Name("products".into()),
                "shop.products.restock.v1",
                Bytes::from_static(b"restock"),
            ),
            Frame::ask(
                7,
                Target::Id(42),
                "shop.products.get_prices.v1",
                Bytes::from_static(b"ids"),
            )
            .with_trace(trace()),
            Frame::reply(7, Bytes::from_static(b"prices")),
            Frame::error(7, Bytes::from_static(b"unknown tag")),
            Frame::error(0, Bytes::new()),
            Frame::control(&Control::Ping { nonce: 9 }).expect("control encodes"),
        ]
    }

    /// A hand-made frame: prefix computed from the header bytes given.
    fn raw_frame(header_and_body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_u32(u32::try_from(header_and_body.len()).expect("small"));
        buf.put_slice(header_and_body);
        buf
    }

    /// Header bytes of a reply (kind 3) with correlation id 1, no target, empty tag.
    fn reply_header() -> Vec<u8> {
        let mut h = vec![3, 0, 1];
        h.push(TARGET_NONE);
        h.extend_from_slice(&0u16.to_be_bytes());
        h
    }

    #[test]
    fn every_kind_round_trips() {
        for frame in sample_frames() {
            let mut buf = encode(&frame);
            assert_eq!(buf.len(), PREFIX_LEN + frame.encoded_len());
            let decoded = decode_all(&mut buf).expect("decodes").expect("complete");
            assert_eq!(decoded, frame);
            assert!(buf.is_empty(), "exactly one frame consumed");
        }
    }

    #[test]
    fn borrowed_and_owned_frames_encode_to_the_same_bytes() {
        for frame in sample_frames() {
            let mut borrowed = BytesMut::new();
            encode_frame_ref(&frame.as_frame_ref(), &mut borrowed).expect("encodes");
            assert_eq!(borrowed, encode(&frame));
        }
    }

    #[test]
    fn decode_ref_borrows_each_frame_in_order_and_reports_its_length() {
        let frames = sample_frames();
        let mut buf = BytesMut::new();
        for frame in &frames {
            encode_frame(frame, &mut buf).expect("encodes");
        }
        let mut decoder = FrameDecoder::default();
        for frame in &frames {
            let (decoded, len) = decoder
                .decode_ref(&mut buf)
                .expect("decodes")
                .expect("whole");
            assert_eq!(decoded, frame.as_frame_ref());
            assert_eq!(decoded.to_frame(), *frame);
            assert_eq!(len, PREFIX_LEN + frame.encoded_len());
            buf.advance(len);
        }
        assert_eq!(decoder.decode_ref(&mut buf).expect("empty"), None);
    }

    #[test]
    fn decode_ref_waits_for_a_whole_frame_and_consumes_nothing() {
        let wire = encode(&sample_frames().swap_remove(0));
        let mut buf = BytesMut::from(&wire[..wire.len() - 1]);
        assert_eq!(
            FrameDecoder::default()
                .decode_ref(&mut buf)
                .expect("no error"),
            None
        );
        assert_eq!(buf.len(), wire.len() - 1);
    }

    #[test]
    fn decode_ref_rejects_what_decode_rejects() {
        let mut header = reply_header();
        header[0] = 9;
        assert!(matches!(
            FrameDecoder::default().decode_ref(&mut raw_frame(&header)),
            Err(CodecError::UnknownKind(9))
        ));
    }

    proptest::proptest! {
        /// On any bytes, the borrowed decode finds what the owned one finds.
        #[test]
        fn decode_ref_agrees_with_decode(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut for_owned = BytesMut::from(&bytes[..]);
            let mut for_ref = BytesMut::from(&bytes[..]);
            let owned = FrameDecoder::new(128).decode(&mut for_owned);
            let mut decoder = FrameDecoder::new(128);
            let borrowed = decoder.decode_ref(&mut for_ref);
            match (owned, borrowed) {
                (Ok(Some(frame)), Ok(Some((view, _)))) => proptest::prop_assert_eq!(frame, view.to_frame()),
                (Ok(None), Ok(None)) => {}
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => proptest::prop_assert!(false, "decode {a:?} but decode_ref {b:?}"),
            }
        }
    }

    #[test]
    fn large_body_encodes_past_the_small_body_scratch() {
        let value = vec![7u8; 10 * SMALL_BODY];
        let bytes = encode_body(&value).expect("encodes");
        assert_eq!(decode_body::<Vec<u8>>(&bytes).expect("decodes"), value);
    }

    #[test]
    fn kind_bytes_round_trip_and_unknown_byte_is_typed_error() {
        for kind in [
            FrameKind::Tell,
            FrameKind::Ask,
            FrameKind::Reply,
            FrameKind::Error,
            FrameKind::Control,
        ] {
            assert_eq!(FrameKind::from_wire(kind.to_wire()).expect("known"), kind);
        }
        assert!(matches!(
            FrameKind::from_wire(0),
            Err(CodecError::UnknownKind(0))
        ));
    }

    #[test]
    fn partial_input_returns_none_then_completes() {
        let frame = sample_frames().swap_remove(1);
        let wire = encode(&frame);
        let mut buf = BytesMut::new();
        for (i, byte) in wire.iter().enumerate() {
            assert_eq!(decode_all(&mut buf).expect("no error"), None, "at byte {i}");
            buf.put_u8(*byte);
        }
        assert_eq!(decode_all(&mut buf).expect("decodes"), Some(frame));
        assert!(buf.is_empty());
    }

    #[test]
    fn several_frames_in_one_buffer_decode_in_order() {
        let frames = sample_frames();
        let mut buf = BytesMut::new();
        for frame in &frames {
            encode_frame(frame, &mut buf).expect("encodes");
        }
        let mut decoder = FrameDecoder::default();
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).expect("decodes") {
            decoded.push(frame);
        }
        assert_eq!(decoded, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_prefix_is_rejected_before_the_body_arrives() {
        let mut decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        buf.put_u32(1025);
        let err = decoder.decode(&mut buf).expect_err("too large");
        assert!(matches!(
            err,
            CodecError::FrameTooLarge {
                len: 1025,
                max: 1024
            }
        ));
        assert_eq!(buf.len(), PREFIX_LEN, "nothing consumed, nothing buffered");
        assert!(buf.capacity() < 1025, "no room reserved for the body");
    }

    #[test]
    fn frame_at_exactly_the_maximum_is_accepted() {
        let frame = Frame::reply(1, Bytes::from(vec![0u8; 100]));
        let mut decoder = FrameDecoder::new(frame.encoded_len());
        let mut buf = encode(&frame);
        assert_eq!(decoder.decode(&mut buf).expect("fits"), Some(frame));
    }

    #[test]
    fn prefix_shorter_than_a_header_is_bad_length() {
        let mut buf = raw_frame(&[3, 0, 0]);
        assert!(matches!(
            decode_all(&mut buf),
            Err(CodecError::BadLength { len: 3, .. })
        ));
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let mut header = reply_header();
        header[0] = 9;
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::UnknownKind(9))
        ));
    }

    #[test]
    fn unknown_flag_bits_are_rejected() {
        let mut header = reply_header();
        header[1] = 0b1_0000;
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::UnknownFlags(0b1_0000))
        ));
    }

    #[test]
    fn unknown_target_kind_is_rejected() {
        let mut header = reply_header();
        header[3] = 7;
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::UnknownTargetKind(7))
        ));
    }

    #[test]
    fn string_longer_than_its_frame_is_truncated() {
        let mut header = vec![1, 0, 0];
        header.push(TARGET_NAME);
        header.extend_from_slice(&500u16.to_be_bytes());
        header.extend_from_slice(b"abc");
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::Truncated {
                field: "target name"
            })
        ));
    }

    #[test]
    fn missing_trace_context_is_truncated() {
        let mut header = reply_header();
        header[1] = FLAG_TRACE;
        header.extend_from_slice(&[0; 10]);
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::Truncated { field: "trace id" })
        ));
    }

    #[test]
    fn invalid_utf8_in_tag_is_rejected() {
        let mut header = vec![1, 0, 0];
        header.push(TARGET_ID);
        header.extend_from_slice(&5u64.to_be_bytes());
        header.extend_from_slice(&2u16.to_be_bytes());
        header.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::InvalidUtf8 { field: "tag" })
        ));
    }

    #[test]
    fn header_breaking_its_kind_rules_is_rejected_on_decode() {
        // A reply whose correlation id is zero.
        let mut header = reply_header();
        header[2] = 0;
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::InvalidHeader {
                kind: FrameKind::Reply,
                ..
            })
        ));
    }

    #[test]
    fn header_breaking_its_kind_rules_is_rejected_on_encode() {
        let bad = [
            Frame::tell(Target::Id(1), "", Bytes::new()),
            Frame::ask(0, Target::Id(1), "t", Bytes::new()),
            Frame {
                correlation_id: 3,
                ..Frame::tell(Target::Id(1), "t", Bytes::new())
            },
            Frame {
                target: None,
                ..Frame::tell(Target::Id(1), "t", Bytes::new())
            },
            Frame {
                target: Some(Target::Id(1)),
                ..Frame::reply(1, Bytes::new())
            },
            Frame {
                tag: "t".into(),
                ..Frame::error(1, Bytes::new())
            },
            Frame {
                correlation_id: 1,
                ..Frame::control(&Control::Leaving).expect("encodes")
            },
        ];
        for frame in bad {
            let mut buf = BytesMut::new();
            let err = encode_frame(&frame, &mut buf).expect_err("invalid frame");
            assert!(matches!(err, CodecError::InvalidHeader { .. }), "{err}");
            assert!(buf.is_empty(), "nothing appended on error");
        }
    }

    #[test]
    fn over_long_tag_is_refused_on_encode() {
        let frame = Frame::tell(Target::Id(1), "x".repeat(70_000), Bytes::new());
        let mut buf = BytesMut::new();
        assert!(matches!(
            encode_frame(&frame, &mut buf),
            Err(CodecError::FieldTooLong { field: "tag", .. })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_frame_is_consumed_and_the_next_one_is_reachable() {
        let mut header = reply_header();
        header[0] = 0;
        let mut buf = raw_frame(&header);
        encode_frame(&Frame::reply(2, Bytes::new()), &mut buf).expect("encodes");
        let mut decoder = FrameDecoder::default();
        assert!(decoder.decode(&mut buf).is_err());
        assert_eq!(
            decoder.decode(&mut buf).expect("decodes"),
            Some(Frame::reply(2, Bytes::new()))
        );
    }

    #[test]
    fn body_round_trips() {
        let value = (String::from("sku-1"), 3u32, vec![1u64, 2, 3]);
        let bytes = encode_body(&value).expect("encodes");
        let back: (String, u32, Vec<u64>) = decode_body(&bytes).expect("decodes");
        assert_eq!(back, value);
    }

    #[test]
    fn body_with_trailing_bytes_is_rejected() {
        let mut bytes = encode_body(&5u32).expect("encodes").to_vec();
        bytes.push(0);
        assert!(matches!(
            decode_body::<u32>(&bytes),
            Err(CodecError::TrailingBytes { extra: 1 })
        ));
    }

    #[test]
    fn body_claiming_a_huge_container_is_refused_without_allocating() {
        // Varint 0xFD marks a u64 length: claim 2^40 bytes of string.
        let mut bytes = vec![0xfd];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            decode_body::<String>(&bytes),
            Err(CodecError::BodyDecode(_))
        ));
    }

    #[test]
    fn truncated_body_is_a_decode_error() {
        let bytes = encode_body(&String::from("hello")).expect("encodes");
        assert!(matches!(
            decode_body::<String>(&bytes[..3]),
            Err(CodecError::BodyDecode(_))
        ));
    }

    #[test]
    fn every_control_message_round_trips_through_a_frame() {
        let messages = [
            Control::Ping { nonce: 1 },
            Control::Pong { nonce: u64::MAX },
            Control::Leaving,
            Control::Membership(vec![0, 1, 2, 255]),
        ];
        for message in messages {
            let mut buf = encode(&Frame::control(&message).expect("encodes"));
            let frame = decode_all(&mut buf).expect("decodes").expect("complete");
            assert_eq!(frame.kind, FrameKind::Control);
            assert_eq!(decode_body::<Control>(&frame.body).expect("body"), message);
        }
    }

    #[test]
    fn unknown_control_variant_is_a_decode_error() {
        assert!(matches!(
            decode_body::<Control>(&[200]),
            Err(CodecError::BodyDecode(_))
        ));
    }

    #[test]
    fn a_frame_with_its_body_encoded_in_place_is_the_same_bytes() {
        let bodies = [String::from("restock"), "x".repeat(3 * SMALL_BODY)];
        for body in bodies {
            let wire_body = encode_body(&body).expect("encodes");
            let frame =
                Frame::tell(Target::Name("products".into()), "t.v1", wire_body).with_trace(trace());
            let header = FrameRef {
                body: &[],
                ..frame.as_frame_ref()
            };
            let mut in_place = BytesMut::from(&b"before"[..]);
            encode_frame_with(&header, DEFAULT_MAX_FRAME_LEN, &mut in_place, |dst| {
                encode_body_into(&body, dst)
            })
            .expect("encodes");
            let mut expected = BytesMut::from(&b"before"[..]);
            expected.extend_from_slice(&encode(&frame));
            assert_eq!(in_place, expected);
        }
    }

    #[test]
    fn a_frame_over_the_limit_or_a_failing_body_leaves_the_buffer_as_it_was() {
        let frame = Frame::tell(Target::Name("a".into()), "t", Bytes::new());
        let header = frame.as_frame_ref();
        let mut dst = BytesMut::from(&b"queued"[..]);
        let too_large = encode_frame_with(&header, 64, &mut dst, |dst| {
            encode_body_into(&vec![7u8; 100], dst)
        });
        assert!(matches!(
            too_large,
            Err(CodecError::FrameTooLarge { max: 64, .. })
        ));
        let failed = encode_frame_with(&header, 1024, &mut dst, |dst| {
            dst.extend_from_slice(b"half a body");
            Err(CodecError::TrailingBytes { extra: 1 })
        });
        assert!(matches!(failed, Err(CodecError::TrailingBytes { .. })));
        assert_eq!(&dst[..], b"queued");
    }

    /// Encodes `frames` as one stream through `headers`.
    fn stream_of(headers: &mut StreamHeaders, frames: &[Frame]) -> Vec<BytesMut> {
        frames
            .iter()
            .map(|frame| {
                let mut wire = BytesMut::new();
                headers.encode_frame(frame, &mut wire).expect("encodes");
                wire
            })
            .collect()
    }

    #[test]
    fn a_stream_states_its_target_and_tags_once_and_later_frames_refer_to_them() {
        let restock = Frame::tell(
            Target::Name("products".into()),
            "shop.products.restock.v1",
            Bytes::from_static(b"sku"),
        );
        let prices = Frame::ask(
            300,
            Target::Name("products".into()),
            "shop.products.get_prices.v1",
            Bytes::from_static(b"ids"),
        )
        .with_trace(trace());
        let frames = vec![
            restock.clone(),
            restock.clone(),
            prices.clone(),
            Frame::reply(300, Bytes::from_static(b"prices")),
            prices,
            restock,
        ];
        let wires = stream_of(&mut StreamHeaders::default(), &frames);
        assert_eq!(wires[0].len(), PREFIX_LEN + frames[0].encoded_len());
        // Neither the name (u16 length + 8 bytes) nor the tag (24 bytes; its u16 length becomes
        // the u16 index) is repeated.
        let referring = PREFIX_LEN + frames[1].encoded_len() - (2 + "products".len()) - 24;
        assert_eq!(wires[1].len(), referring, "target and tag by reference");
        let mut stream = BytesMut::new();
        wires.iter().for_each(|w| stream.extend_from_slice(w));
        let mut owned = FrameDecoder::default();
        let mut for_owned = stream.clone();
        let mut borrowed = FrameDecoder::default();
        let mut for_ref = stream;
        for frame in &frames {
            assert_eq!(
                owned.decode(&mut for_owned).expect("decodes").as_ref(),
                Some(frame)
            );
            let (view, len) = borrowed
                .decode_ref(&mut for_ref)
                .expect("decodes")
                .expect("complete");
            assert_eq!(&view.to_frame(), frame);
            for_ref.advance(len);
        }
        assert!(for_owned.is_empty() && for_ref.is_empty());
    }

    #[test]
    fn a_reference_to_what_the_stream_never_stated_is_refused() {
        let frame = Frame::tell(Target::Name("a".into()), "t", Bytes::new());
        let wires = stream_of(&mut StreamHeaders::default(), &[frame.clone(), frame]);
        // The second frame alone, on a fresh stream: its target and tag refer to nothing.
        let mut alone = wires[1].clone();
        assert!(matches!(
            decode_all(&mut alone),
            Err(CodecError::UnknownReference { field: "target" })
        ));
        let mut tag_only = wires[1].clone();
        tag_only[PREFIX_LEN + 3] = TARGET_ID;
        let mut with_id = tag_only[..PREFIX_LEN + 4].to_vec();
        with_id.extend_from_slice(&9u64.to_be_bytes());
        with_id.extend_from_slice(&tag_only[PREFIX_LEN + 4..]);
        let mut with_id = raw_frame(&with_id[PREFIX_LEN..]);
        assert!(matches!(
            decode_all(&mut with_id),
            Err(CodecError::UnknownReference { field: "tag" })
        ));
    }

    #[test]
    fn a_stream_remembers_at_most_its_limit_of_tags_and_states_the_rest() {
        let tags: Vec<String> = (0..=MAX_STREAM_TAGS).map(|i| format!("tag.{i}")).collect();
        let frames: Vec<Frame> = tags
            .iter()
            .map(|t| Frame::tell(Target::Id(1), t.as_str(), Bytes::new()))
            .collect();
        let mut headers = StreamHeaders::default();
        let wires = stream_of(&mut headers, &frames);
        let mut decoder = FrameDecoder::default();
        for (wire, frame) in wires.into_iter().zip(&frames) {
            let mut wire = wire;
            assert_eq!(
                decoder.decode(&mut wire).expect("decodes").as_ref(),
                Some(frame)
            );
        }
        // A peer that asks to remember one more is refused.
        let mut over = BytesMut::new();
        let mut eager = StreamHeaders::default();
        eager
            .encode_frame(
                &Frame::tell(Target::Id(1), "one.more", Bytes::new()),
                &mut over,
            )
            .expect("encodes");
        assert!(matches!(
            decoder.decode(&mut over),
            Err(CodecError::TooManyTags {
                max: MAX_STREAM_TAGS
            })
        ));
    }

    #[test]
    fn a_frame_that_fails_to_encode_changes_nothing_the_stream_remembers() {
        let mut headers = StreamHeaders::default();
        let frame = Frame::tell(Target::Name("a".into()), "t", Bytes::new());
        let header = frame.as_frame_ref();
        let mut dst = BytesMut::new();
        let failed = headers.encode_frame_with(&header, 1024, &mut dst, |_| {
            Err(CodecError::TrailingBytes { extra: 1 })
        });
        assert!(failed.is_err() && dst.is_empty());
        let mut wire = stream_of(&mut headers, std::slice::from_ref(&frame)).remove(0);
        assert_eq!(decode_all(&mut wire).expect("decodes"), Some(frame));
    }

    #[test]
    fn correlation_ids_are_varints_and_an_overlong_one_is_refused() {
        for id in [1, 127, 128, 16_383, 16_384, u64::MAX] {
            let frame = Frame::reply(id, Bytes::new());
            let mut wire = encode(&frame);
            assert_eq!(wire.len(), PREFIX_LEN + frame.encoded_len());
            assert_eq!(decode_all(&mut wire).expect("decodes"), Some(frame));
        }
        let mut header = vec![3, 0];
        header.extend_from_slice(&[0xff; 10]);
        header.push(TARGET_NONE);
        header.extend_from_slice(&0u16.to_be_bytes());
        assert!(matches!(
            decode_all(&mut raw_frame(&header)),
            Err(CodecError::BadVarint)
        ));
    }

    #[test]
    fn a_long_tag_is_stated_in_full_and_a_peer_cannot_make_a_stream_remember_it() {
        let long = "t".repeat(MAX_REMEMBERED_TAG_LEN + 1);
        let frame = Frame::tell(Target::Id(1), long.as_str(), Bytes::new());
        let mut headers = StreamHeaders::default();
        let wires = stream_of(&mut headers, &[frame.clone(), frame.clone()]);
        assert_eq!(
            wires[1].len(),
            PREFIX_LEN + frame.encoded_len(),
            "not referred to"
        );
        // The same frame with the remember flag set by hand.
        let mut remembered = wires[0].clone();
        remembered[PREFIX_LEN + 1] |= FLAG_TAG_REMEMBER;
        assert!(matches!(
            decode_all(&mut remembered),
            Err(CodecError::FieldTooLong {
                field: "remembered tag",
                ..
            })
        ));
    }

    /// A tell of `body` to `target` tagged `tag`, through `encode_tell_with` with `held`.
    fn tell_with(
        headers: &mut StreamHeaders,
        held: Option<TellHeader>,
        target: &str,
        body: &'static [u8],
        wire: &mut BytesMut,
    ) -> Option<TellHeader> {
        headers
            .encode_tell_with(held, target, "t.v1", 1024, wire, |dst| {
                dst.extend_from_slice(body);
                Ok(())
            })
            .expect("encodes")
    }

    fn told(target: &str, body: &'static [u8]) -> Frame {
        Frame::tell(
            Target::Name(target.into()),
            "t.v1",
            Bytes::from_static(body),
        )
    }

    /// A stream that stated target "a" and tag `t.v1` in its first tell and referred to them
    /// in its second, the bytes of both, and the header the second gave.
    fn referring_to_a() -> (StreamHeaders, BytesMut, Option<TellHeader>) {
        let mut headers = StreamHeaders::default();
        let mut wire = BytesMut::new();
        tell_with(&mut headers, None, "a", b"1", &mut wire);
        let held = tell_with(&mut headers, None, "a", b"2", &mut wire);
        (headers, wire, held)
    }

    #[test]
    fn a_tell_header_is_copied_while_the_stream_keeps_its_target() {
        let mut headers = StreamHeaders::default();
        let mut wire = BytesMut::new();
        // Stated, then referred to: only the second gives a header to copy.
        assert_eq!(tell_with(&mut headers, None, "a", b"1", &mut wire), None);
        let held = tell_with(&mut headers, None, "a", b"2", &mut wire);
        assert!(held.is_some());
        let before = wire.len();
        assert_eq!(tell_with(&mut headers, held, "a", b"3", &mut wire), held);
        // The copy is the bytes the stream would have worked out.
        let mut again = headers.clone();
        let mut worked_out = BytesMut::new();
        again
            .encode_frame(&told("a", b"3"), &mut worked_out)
            .expect("encodes");
        assert_eq!(&wire[before..], &worked_out[..]);
        let mut decoder = FrameDecoder::default();
        for body in [b"1", b"2", b"3"] {
            assert_eq!(
                decoder.decode(&mut wire).expect("decodes"),
                Some(told("a", body))
            );
        }
        assert!(wire.is_empty());
    }

    #[test]
    fn a_tell_header_is_not_copied_once_the_stream_moved_to_another_target_or_on_another_stream() {
        let (mut headers, mut wire, held) = referring_to_a();
        tell_with(&mut headers, None, "b", b"3", &mut wire);
        // `held` refers to the stream's target, which is "b" now: "a" is stated again.
        let restated = tell_with(&mut headers, held, "a", b"4", &mut wire);
        assert_ne!(restated, held);
        // Another stream's state does not take it either.
        let mut other = StreamHeaders::default();
        let mut other_wire = BytesMut::new();
        tell_with(&mut other, held, "a", b"5", &mut other_wire);
        let mut decoder = FrameDecoder::default();
        for (target, body) in [("a", b"1"), ("a", b"2"), ("b", b"3"), ("a", b"4")] {
            assert_eq!(
                decoder.decode(&mut wire).expect("decodes"),
                Some(told(target, body))
            );
        }
        assert_eq!(
            FrameDecoder::default()
                .decode(&mut other_wire)
                .expect("decodes"),
            Some(told("a", b"5"))
        );
    }

    #[test]
    fn a_copied_tell_header_still_checks_the_frame_length() {
        let (mut headers, mut wire, held) = referring_to_a();
        let len = wire.len();
        let refused = headers.encode_tell_with(held, "a", "t.v1", 8, &mut wire, |dst| {
            dst.extend_from_slice(&[0; 64]);
            Ok(())
        });
        assert!(matches!(
            refused,
            Err(CodecError::FrameTooLarge { max: 8, .. })
        ));
        assert_eq!(wire.len(), len, "nothing appended");
    }

    #[test]
    fn decode_ref_reads_a_referring_tell_as_decode_does() {
        let mut headers = StreamHeaders::default();
        let frames = [
            told("a", b"1"),
            told("a", b"2"),
            told("a", b""),
            told("b", b"3"),
        ];
        let mut wire: BytesMut = stream_of(&mut headers, &frames).concat().as_slice().into();
        let mut by_ref = FrameDecoder::default();
        let mut owned = FrameDecoder::default();
        let mut copy = wire.clone();
        for frame in &frames {
            let (borrowed, len) = by_ref
                .decode_ref(&mut wire)
                .expect("decodes")
                .expect("whole");
            assert_eq!(borrowed.to_frame(), *frame);
            wire.advance(len);
            assert_eq!(
                owned.decode(&mut copy).expect("decodes").as_ref(),
                Some(frame)
            );
        }
        // The same header with a tag the stream never stated is refused, as by `decode`.
        let mut unknown = raw_frame(&[1, FLAG_TAG_INDEX, 0, TARGET_STREAM, 0, 9]);
        assert!(matches!(
            by_ref.decode_ref(&mut unknown),
            Err(CodecError::UnknownReference { field: "tag" })
        ));
    }
}
