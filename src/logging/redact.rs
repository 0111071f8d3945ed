//! Redaction of secrets from log output, applied to every byte the logger writes (see
//! [`Redacting`]), whatever the target, level or format and whatever `RUST_LOG` says.
//!
//! A value is redacted when it follows a sensitive name and a separator (`:`, `=`, `>`, or `", "`
//! after a quoted name), so header dumps (`x-amz-s3session-token:TOKEN`), query strings
//! (`X-Amz-Signature=…&`), `key=value` fields, JSON and `Debug` maps (`"x-amz-security-token":
//! "…"`), `Debug` tuples (`("x-amz-s3session-token", "…")`) and XML
//! (`<SessionToken>…</SessionToken>`) are all covered. The names (case-insensitive):
//!
//! - any name ending in `token` (`x-amz-s3session-token`, `x-amz-security-token`, `SessionToken`,
//!   `aws_session_token`, …) except page markers (`continuation-token`, `NextToken`) and S3 error
//!   codes (`ExpiredToken`, `InvalidToken`);
//! - any name ending in `signature` (`Signature=` of an `Authorization` header, `X-Amz-Signature`,
//!   `chunk-signature`, `x-amz-trailer-signature`);
//! - `secret`, `SecretAccessKey`, `secret_access_key` (and `aws_` prefixed), `secret_key`;
//! - `X-Amz-Credential`, `x-amz-…-customer-key` (SSE-C keys);
//! - `authorization` and `proxy-authorization`: an `AWS4-…` value stays readable (scheme,
//!   credential scope, signed headers; its `Signature` is redacted by the rule above), any other
//!   scheme keeps its name and loses its credentials (`Basic [redacted]`);
//! - `Basic …`/`Bearer …` credentials anywhere.
//!
//! The value ends at whitespace, a quote, a backslash (JSON escapes), `,;&<>()[]{}` or a control
//! character: tokens, keys and signatures never contain those. A line with none of the names
//! costs one case-folded copy and one SIMD multi-substring search (Teddy).

use std::borrow::Cow;
use std::cell::RefCell;
use std::io;
use std::sync::LazyLock;

use tracing_subscriber::fmt::MakeWriter;

/// What a secret value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The lowercase substrings a line must contain to need a closer look: every name above ends
/// with (or is) one of them.
const NEEDLES: [&str; 8] = [
    "token",
    "signature",
    "authorization",
    "secret",
    "x-amz-credential",
    "customer-key",
    "basic ",
    "bearer ",
];

/// Names ending in `token` that are no secret, without the `token` (and a `-` or `_` before it).
const NOT_SECRET_TOKENS: [&str; 5] = ["continuation", "next", "expired", "invalid", "malformed"];

/// How far past a name the separator may run (`\": \"`, ANSI colour codes, `Some(`).
const MAX_SEPARATOR: usize = 40;

/// Finds [`NEEDLES`] in lowercase (or case-folded) text: Teddy (SIMD, all needles in one pass)
/// where the CPU has it, an Aho-Corasick automaton elsewhere.
enum Needles {
    Packed(aho_corasick::packed::Searcher),
    Automaton(aho_corasick::AhoCorasick),
}

impl Needles {
    fn new() -> Needles {
        match aho_corasick::packed::Searcher::new(NEEDLES) {
            Some(packed) => Needles::Packed(packed),
            None => Needles::automaton(),
        }
    }

    /// The portable searcher, with the packed one's (leftmost-first) semantics.
    fn automaton() -> Needles {
        let automaton = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(NEEDLES)
            .expect("a handful of short needles");
        Needles::Automaton(automaton)
    }

    fn any(&self, text: &[u8]) -> bool {
        match self {
            Needles::Packed(p) => p.find(text).is_some(),
            Needles::Automaton(a) => a.is_match(text),
        }
    }

    /// (needle, start) of every occurrence, left to right.
    fn each(&self, text: &[u8], mut f: impl FnMut(&'static str, usize)) {
        match self {
            Needles::Packed(p) => {
                for m in p.find_iter(text) {
                    f(NEEDLES[m.pattern().as_usize()], m.start());
                }
            }
            Needles::Automaton(a) => {
                for m in a.find_iter(text) {
                    f(NEEDLES[m.pattern().as_usize()], m.start());
                }
            }
        }
    }
}

static SEARCH: LazyLock<Needles> = LazyLock::new(Needles::new);

thread_local! {
    /// A case-folded, then lowercase, copy of the line being checked, reused across lines.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `line` with every secret value replaced by [`REDACTED`]; borrowed (no copy) when there is
/// nothing to redact.
pub fn redact(line: &[u8]) -> Cow<'_, [u8]> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        // The fast check: `| 0x20` lowercases letters and leaves `-` and space alone, so every
        // needle in the lowercase line is in the folded one (which is cheaper to make).
        scratch.clear();
        scratch.extend(line.iter().map(|b| b | 0x20));
        if !SEARCH.any(&scratch) {
            return Cow::Borrowed(line);
        }
        scratch.clear();
        scratch.extend(line.iter().map(u8::to_ascii_lowercase));
        let lower = &scratch[..];
        let mut spans = Vec::new();
        SEARCH.each(lower, |needle, at| {
            examine(needle, at, line, lower, &mut spans)
        });
        let spans = merge(spans);
        if spans.is_empty() {
            Cow::Borrowed(line)
        } else {
            Cow::Owned(replace(line, spans))
        }
    })
}

/// [`redact`] for text.
#[cfg(test)]
pub fn redact_str(line: &str) -> Cow<'_, str> {
    match redact(line.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(line),
        // Only ASCII runs between ASCII delimiters were replaced: still UTF-8.
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// Looks at one occurrence of `needle` at `at` and records the secret value it names, if any.
fn examine(needle: &str, at: usize, line: &[u8], lower: &[u8], spans: &mut Vec<(usize, usize)>) {
    let end = at + needle.len();
    let name_start = lower[..at]
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        .map_or(0, |i| i + 1);
    let before = &lower[..name_start];
    if before.ends_with(b"::") || before.ends_with(b"</") {
        return; // a module path (`aws_config::imds::client::token`) or a closing XML tag
    }
    let span = match needle {
        "token" => {
            let before = &lower[..at];
            // Page markers, and S3 error codes (`ExpiredToken: The provided token …`).
            let not_secret = NOT_SECRET_TOKENS.iter().any(|w| {
                before.ends_with(w.as_bytes())
                    || before
                        .strip_suffix(b"-")
                        .or_else(|| before.strip_suffix(b"_"))
                        .is_some_and(|b| b.ends_with(w.as_bytes()))
            });
            if not_secret {
                None
            } else {
                value_after(line, lower, name_start, end)
            }
        }
        "secret" => {
            let rest = &lower[end..];
            let suffix = [
                "accesskey",
                "_access_key",
                "-access-key",
                "_key",
                "-key",
                "key",
            ]
            .iter()
            .find(|s| rest.starts_with(s.as_bytes()))
            .map_or(0, |s| s.len());
            value_after(line, lower, name_start, end + suffix)
        }
        "authorization" => authorization_value(line, lower, name_start, end),
        "basic " | "bearer " => scheme_credentials(line, at, end),
        _ => value_after(line, lower, name_start, end),
    };
    spans.extend(span);
}

/// Where the value after the name `lower[name_start..name_end]` starts: past a separator run that
/// holds `:`, `=` or `>` (or a `,` when the name opens a `Debug` tuple, `("name", "value")`),
/// quotes, spaces, `[`, ANSI colour codes and `Some(`. None when the name is not followed by a
/// separator.
fn value_start(lower: &[u8], name_start: usize, name_end: usize) -> Option<usize> {
    let before = &lower[..name_start];
    let tuple = before.ends_with(b"(\"") || before.ends_with(b"(\\\"");
    if lower[name_end..].starts_with(b"::") {
        return None; // a module path (`token::refresh`)
    }
    let (mut assign, mut comma, mut paren) = (false, false, false);
    let mut i = name_end;
    while i < lower.len() && i - name_end <= MAX_SEPARATOR {
        match lower[i] {
            b':' | b'=' | b'>' => assign = true,
            b',' => comma = true,
            b'"' | b'\'' | b'\\' | b' ' | b'\t' | b'[' => {}
            0x1b if lower.get(i + 1) == Some(&b'[') => {
                // CSI sequence: ESC [ parameters final-byte.
                i += 2;
                while i < lower.len() && !(0x40..=0x7e).contains(&lower[i]) {
                    i += 1;
                }
            }
            // `{:#?}` puts an `Option`'s content on the next line.
            b'\n' | b'\r' if paren => {}
            b's' if lower[i..].starts_with(b"some(") => {
                paren = true;
                i += 4;
            }
            _ => break,
        }
        i += 1;
    }
    (assign || (comma && tuple)).then_some(i)
}

fn is_stop(b: u8) -> bool {
    b <= b' '
        || b == 0x7f
        || matches!(
            b,
            b'"' | b'\''
                | b'\\'
                | b','
                | b';'
                | b'&'
                | b'<'
                | b'>'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
        )
}

fn run_end(line: &[u8], start: usize) -> usize {
    line[start..]
        .iter()
        .position(|&b| is_stop(b))
        .map_or(line.len(), |n| start + n)
}

/// Values that are already placeholders, not secrets (`Sensitive` is how `http` prints a
/// sensitive header value, `** redacted **` how the AWS credential types print theirs).
fn is_placeholder(value: &[u8]) -> bool {
    value.is_empty()
        || value[0] == b'*'
        || value == b"None"
        || value == b"Sensitive"
        || value.eq_ignore_ascii_case(b"redacted")
}

/// The secret value after a name, if the name is followed by a separator and a value.
fn value_after(
    line: &[u8],
    lower: &[u8],
    name_start: usize,
    name_end: usize,
) -> Option<(usize, usize)> {
    let start = value_start(lower, name_start, name_end)?;
    let end = run_end(line, start);
    (!is_placeholder(&line[start..end])).then_some((start, end))
}

/// HTTP authentication schemes whose name stays readable (IANA registry, plus AWS SigV2).
const SCHEMES: &[&[u8]] = &[
    b"basic",
    b"bearer",
    b"digest",
    b"dpop",
    b"gnap",
    b"hoba",
    b"mutual",
    b"negotiate",
    b"ntlm",
    b"privatetoken",
    b"scram-sha-1",
    b"scram-sha-256",
    b"vapid",
    b"aws",
];

/// The credentials of an `Authorization` value: nothing for `AWS4-…` (its `Signature=` is its own
/// match), the word after a known scheme (`Basic x`, `Bearer x`, `AWS key:sig`), else the first
/// word and the next one (a value without a known scheme).
fn authorization_value(
    line: &[u8],
    lower: &[u8],
    name_start: usize,
    name_end: usize,
) -> Option<(usize, usize)> {
    let start = value_start(lower, name_start, name_end)?;
    let word_end = run_end(line, start);
    let word = &lower[start..word_end];
    if is_placeholder(&line[start..word_end]) || word.starts_with(b"aws4-") {
        return None;
    }
    let next = match line.get(word_end..word_end + 2) {
        Some([b' ', b]) if !is_stop(*b) => Some(run_end(line, word_end + 1)),
        _ => None,
    };
    match next {
        Some(end) if SCHEMES.contains(&word) => Some((word_end + 1, end)),
        Some(end) => Some((start, end)),
        None if SCHEMES.contains(&word) => None,
        None => Some((start, word_end)),
    }
}

/// The credentials after a `Basic ` or `Bearer ` found anywhere: a token68 of at least 8
/// characters that does not look like a plain word ("basic authentication" stays).
fn scheme_credentials(line: &[u8], at: usize, end: usize) -> Option<(usize, usize)> {
    if at > 0 && line[at - 1].is_ascii_alphanumeric() {
        return None;
    }
    let token_end = line[end..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)))
        .map_or(line.len(), |n| end + n);
    let token = &line[end..token_end];
    let credential_like = token.iter().skip(1).any(|&b| !b.is_ascii_lowercase());
    (token.len() >= 8 && credential_like).then_some((end, token_end))
}

fn merge(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.retain(|(s, e)| s < e);
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn replace(line: &[u8], spans: Vec<(usize, usize)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + spans.len() * REDACTED.len());
    let mut at = 0;
    for (s, e) in spans {
        out.extend_from_slice(&line[at..s]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = e;
    }
    out.extend_from_slice(&line[at..]);
    out
}

/// A [`MakeWriter`] whose writers redact (see [`redact`]) before passing bytes on to `M`'s.
///
/// tracing-subscriber's fmt layer formats a whole event (several lines, for a multi-line value)
/// and writes it with one `write_all`; [`RedactingWriter::write`] always takes the whole buffer,
/// so an event is redacted as one piece and no value is split between two calls.
#[derive(Clone, Debug)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter(self.0.make_writer_for(meta))
    }
}

/// The writer of [`Redacting`].
#[derive(Debug)]
pub struct RedactingWriter<W>(W);

impl<W: io::Write> io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&redact(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
