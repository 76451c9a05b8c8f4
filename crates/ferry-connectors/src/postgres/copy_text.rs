//! PostgreSQL's COPY text format: one row per line, fields separated by tabs, `\N` for NULL,
//! and backslash escapes for the bytes that would break the framing. Hand-written because it
//! is a few lines on the hot path and no crate offers it without a whole client around it.

use std::borrow::Cow;

/// The field text for NULL.
pub const NULL: &[u8] = b"\\N";

fn needs_escape(byte: u8) -> bool {
    matches!(byte, b'\\' | b'\n' | b'\r' | b'\t')
}

/// Appends `text` as one COPY field.
pub fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (index, &byte) in text.iter().enumerate() {
        if needs_escape(byte) {
            out.extend_from_slice(&text[start..index]);
            out.extend_from_slice(match byte {
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => b"\\t",
            });
            start = index + 1;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// The text of one COPY field (`None` for NULL), borrowed when it holds no escape.
pub fn unescape(field: &[u8]) -> Option<Cow<'_, [u8]>> {
    if field == NULL {
        return None;
    }
    if !field.contains(&b'\\') {
        return Some(Cow::Borrowed(field));
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b'b') => out.push(0x08),
            Some(b'f') => out.push(0x0c),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'v') => out.push(0x0b),
            Some(digit @ b'0'..=b'7') => {
                let mut value = u32::from(digit - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(next @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(next - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            Some(b'x') => {
                let mut value = 0u32;
                for _ in 0..2 {
                    match bytes.peek().and_then(|next| (*next as char).to_digit(16)) {
                        Some(digit) => {
                            value = value * 16 + digit;
                            bytes.next();
                        }
                        None => break,
                    }
                }
                out.push(value as u8);
            }
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    Some(Cow::Owned(out))
}

/// Splits a row (without its newline) into its fields.
pub fn fields(row: &[u8]) -> impl Iterator<Item = &[u8]> {
    row.split(|byte| *byte == b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_escaping() {
        for text in [
            "plain",
            "",
            "tab\there",
            "line\nbreak\r",
            "back\\slash \\N",
            "ünïcödé ✓",
        ] {
            let mut out = Vec::new();
            escape_into(&mut out, text.as_bytes());
            assert!(!out.contains(&b'\t') && !out.contains(&b'\n'), "{text}");
            assert_eq!(unescape(&out).as_deref(), Some(text.as_bytes()), "{text}");
        }
        assert_eq!(unescape(NULL), None);
        assert_eq!(unescape(b"\\101\\x42").as_deref(), Some(&b"AB"[..]));
    }
}
