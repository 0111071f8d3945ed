//! `Range: bytes=...` parsing against an object of known length.

/// A parsed `Range` header against an object of known length.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Range {
    Full,
    /// Inclusive byte positions.
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. Anything unparsable, or several ranges,
/// means the whole object (as S3 does).
pub(crate) fn parse_range(header: &str, len: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Full;
    };
    let Some((a, b)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return Range::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => Range::Unsatisfiable,
            Ok(_) if len == 0 => Range::Unsatisfiable,
            Ok(n) => Range::Partial(len.saturating_sub(n), len - 1),
            Err(_) => Range::Full,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return Range::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return Range::Full,
        }
    };
    if start >= len {
        return Range::Unsatisfiable;
    }
    Range::Partial(start, end.min(len - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Range::Partial(0, 9));
        assert_eq!(parse_range("bytes=90-200", 100), Range::Partial(90, 99));
        assert_eq!(parse_range("bytes=10-", 100), Range::Partial(10, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Partial(90, 99));
        assert_eq!(parse_range("bytes=-200", 100), Range::Partial(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Range::Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Range::Full);
        assert_eq!(parse_range("items=0-1", 100), Range::Full);
    }
}
