//! Standard-alphabet base64 (RFC 4648 section 4). Small on purpose: the
//! general-purpose crate costs several kilobytes of Wasm in every module, and
//! the filters need only this: encode with padding; decode with or without
//! padding, rejecting anything the `base64` crate's strict decoder rejects
//! (the property tests compare both).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the padded encoding of `bytes`. Tap records encode whole bodies
/// with it, so it works on bytes, four at a time, not on `char`s.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    let mut coded = vec![b'='; bytes.len().div_ceil(3) * 4];
    let symbol = |n: u32, shift: u32| {
        let at = (n >> shift & 63) as usize;
        ALPHABET.get(at).copied().unwrap_or(b'=')
    };
    for (c, o) in bytes.chunks(3).zip(coded.chunks_exact_mut(4)) {
        let n = match *c {
            [a, b, c] => (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c),
            [a, b] => (u32::from(a) << 16) | (u32::from(b) << 8),
            [a] => u32::from(a) << 16,
            _ => 0,
        };
        let [o0, o1, o2, o3] = o else {
            continue;
        };
        *o0 = symbol(n, 18);
        *o1 = symbol(n, 12);
        // A short last group keeps its '=' padding.
        if c.len() > 1 {
            *o2 = symbol(n, 6);
        }
        if c.len() > 2 {
            *o3 = symbol(n, 0);
        }
    }
    // Only alphabet symbols and '=' were written: always ASCII.
    out.push_str(std::str::from_utf8(&coded).unwrap_or_default());
}

fn sextet(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes `input`, padded, unpadded or partly padded; `None` for any other
/// character, a length no encoding has, too much padding, or non-zero
/// leftover bits in the last character (a non-canonical encoding).
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    let data_len = input.len() - input.iter().rev().take_while(|&&c| c == b'=').count();
    let (data, padding) = input.split_at(data_len);
    let max_padding = match data.len() % 4 {
        0 => 0,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    if padding.len() > max_padding {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | sextet(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            3 if n & 3 == 0 => out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]),
            2 if n & 15 == 0 => out.push((n >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}
