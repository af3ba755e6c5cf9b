//! The byte-level pieces of fleetcal's binary forms (a result document's packed form,
//! [`crate::document`]; the coordinator's packed run summaries): LEB128 varints, little-endian doubles, length-prefixed text, and a
//! reader that says where the bytes end early instead of panicking.

use crate::document::CodecError;

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let low = u8::try_from(v & 0x7f).unwrap_or(0); // 7 bits: always fits
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A signed integer as an unsigned one, small magnitudes small (zigzag).
pub fn zigzag(v: i64) -> u64 {
    // Bit reinterpretation is the point of zigzag: `as` between same-width integers.
    ((v << 1) ^ (v >> 63)) as u64
}

/// The signed integer back from [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends a length (a `usize`, always within `u64`) as a varint.
pub fn put_len(out: &mut Vec<u8>, n: usize) {
    put_varint(out, u64::try_from(n).unwrap_or(u64::MAX));
}

/// Appends a double, bit for bit.
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a length-prefixed UTF-8 text.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Appends `doubles` as a lane: their count, then each double's eight bytes one plane at a
/// time (every double's most significant byte, then every next one, …). A packed value's
/// rates are alike in their sign, exponent and first bits of mantissa, so apart from the
/// rest and byte by byte zstd finds their likeness: a quick result's pair rates pack ~9 %
/// smaller than with each double inline.
pub fn put_lane(out: &mut Vec<u8>, doubles: &[f64]) {
    put_len(out, doubles.len());
    for plane in (0..8u32).rev() {
        out.extend(doubles.iter().map(|d| (d.to_bits() >> (plane * 8)) as u8));
    }
}

/// Reads what the `put_*` functions wrote; every read fails with
/// [`CodecError::Damaged`] naming `what` rather than reading past the end.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Damaged("header ends early".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, CodecError> {
        match self.take(1)? {
            [b] => Ok(*b),
            _ => Err(CodecError::Damaged("header ends early".into())),
        }
    }

    /// A LEB128 varint (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            v |= bits
                .checked_shl(shift)
                .filter(|x| x >> shift == bits)
                .ok_or_else(|| CodecError::Damaged("varint overflows".into()))?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Damaged("varint too long".into()))
    }

    /// A varint that is a length of at most what is left (so a damaged length never makes
    /// a huge allocation).
    pub fn len(&mut self, what: &str) -> Result<usize, CodecError> {
        usize::try_from(self.varint()?)
            .ok()
            .filter(|&n| n <= self.0.len())
            .ok_or_else(|| CodecError::Damaged(format!("{what} is longer than the bytes left")))
    }

    /// A double, bit for bit.
    pub fn f64(&mut self) -> Result<f64, CodecError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| CodecError::Damaged("header ends early".into()))?;
        Ok(f64::from_le_bytes(b))
    }

    /// A lane of doubles ([`put_lane`]), bit for bit.
    pub fn lane(&mut self) -> Result<Vec<f64>, CodecError> {
        let n = usize::try_from(self.varint()?)
            .ok()
            .filter(|&n| n.checked_mul(8).is_some_and(|b| b <= self.0.len()))
            .ok_or_else(|| CodecError::Damaged("lane is longer than the bytes left".into()))?;
        let planes = self.take(n * 8)?;
        let mut bits = vec![0u64; n];
        if n > 0 {
            for plane in planes.chunks_exact(n) {
                for (b, &byte) in bits.iter_mut().zip(plane) {
                    *b = (*b << 8) | u64::from(byte);
                }
            }
        }
        Ok(bits.into_iter().map(f64::from_bits).collect())
    }

    /// A length-prefixed UTF-8 text.
    pub fn str(&mut self, what: &str) -> Result<String, CodecError> {
        let n = self.len(what)?;
        std::str::from_utf8(self.take(n)?)
            .map(str::to_string)
            .map_err(|e| CodecError::Damaged(format!("{what}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips_and_a_cut_is_an_error() {
        let mut out = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            put_varint(&mut out, v);
        }
        put_f64(&mut out, -0.0);
        put_f64(&mut out, 1.0e-300);
        put_str(&mut out, "gemm fp32 ✓");
        let mut r = Reader(&out);
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(r.varint().unwrap(), v);
        }
        assert_eq!(r.f64().unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(r.f64().unwrap(), 1.0e-300);
        assert_eq!(r.str("name").unwrap(), "gemm fp32 ✓");
        assert!(r.0.is_empty());
        for cut in 0..out.len() {
            let mut r = Reader(&out[..cut]);
            let all = (0..7).try_for_each(|_| r.varint().map(drop));
            let all = all
                .and_then(|()| r.f64().map(drop))
                .and_then(|()| r.f64().map(drop))
                .and_then(|()| r.str("name").map(drop));
            assert!(all.is_err(), "cut at {cut}");
        }
        // A lane: bit for bit, empty too; a cut one is an error.
        let lane = [1.5, -0.0, f64::NAN, 1e-310, f64::INFINITY, 2.0f64.powi(60)];
        for doubles in [&lane[..], &[]] {
            let mut out = Vec::new();
            put_lane(&mut out, doubles);
            out.push(7);
            let mut r = Reader(&out);
            let back = r.lane().unwrap();
            let bits = |v: &[f64]| v.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back), bits(doubles));
            assert_eq!(r.0, [7]);
            for cut in 0..out.len() - 1 {
                assert!(Reader(&out[..cut]).lane().is_err(), "cut at {cut}");
            }
        }
        let mut lying = Vec::new();
        put_varint(&mut lying, u64::MAX / 4);
        assert!(Reader(&lying).lane().is_err(), "a count past the end");
        // A length past the end is refused before anything is allocated.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX);
        assert!(Reader(&huge).str("name").is_err());
        assert!(Reader(&[0xff; 11]).varint().is_err());
    }
}
