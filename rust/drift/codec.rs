//! A tiny little-endian byte writer/reader for the profile and window formats.

use crate::errors::{Error, Result};

/// Appends little-endian primitives to a buffer.
#[derive(Default)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// Writes raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    /// Writes a `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Writes a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes an `f64`.
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes a length-prefixed `f64` slice.
    pub fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        for &x in v {
            self.f64(x);
        }
    }
    /// Writes a length-prefixed `u64` slice.
    pub fn u64s(&mut self, v: &[u64]) {
        self.u64(v.len() as u64);
        for &x in v {
            self.u64(x);
        }
    }
    /// Writes a length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
}

/// Reads little-endian primitives, failing with `DriftInput` on truncated or malformed data.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `data`; `what` names the format in error messages.
    #[must_use]
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, pos: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                Error::DriftInput(format!(
                    "{}: truncated data at byte {} (need {n} more)",
                    self.what, self.pos
                ))
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0_u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Checks a magic prefix.
    ///
    /// # Errors
    /// `DriftInput` when the bytes differ.
    pub fn magic(&mut self, magic: &[u8]) -> Result<()> {
        if self.take(magic.len())? == magic {
            Ok(())
        } else {
            Err(Error::DriftInput(format!(
                "{}: bad magic, not a driftline {} blob",
                self.what, self.what
            )))
        }
    }
    /// Reads a `u8`.
    ///
    /// # Errors
    /// `DriftInput` on truncation.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads a `u32`.
    ///
    /// # Errors
    /// `DriftInput` on truncation.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// Reads a `u64`.
    ///
    /// # Errors
    /// `DriftInput` on truncation.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// Reads an `f64`.
    ///
    /// # Errors
    /// `DriftInput` on truncation.
    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    fn len(&mut self, elem: usize) -> Result<usize> {
        let n = self.u64()?;
        let remaining = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(elem as u64) > remaining {
            return Err(Error::DriftInput(format!(
                "{}: length {n} exceeds the remaining data",
                self.what
            )));
        }
        Ok(n as usize)
    }
    /// Reads a length-prefixed `f64` vector.
    ///
    /// # Errors
    /// `DriftInput` on truncation.
    pub fn f64s(&mut self) -> Result<Vec<f64>> {
        let n = self.len(8)?;
        (0..n).map(|_| self.f64()).collect()
    }
    /// Reads a length-prefixed `u64` vector.
    ///
    /// # Errors
    /// `DriftInput` on truncation.
    pub fn u64s(&mut self) -> Result<Vec<u64>> {
        let n = self.len(8)?;
        (0..n).map(|_| self.u64()).collect()
    }
    /// Reads a length-prefixed UTF-8 string.
    ///
    /// # Errors
    /// `DriftInput` on truncation or invalid UTF-8.
    pub fn str(&mut self) -> Result<String> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| Error::DriftInput(format!("{}: feature name is not UTF-8", self.what)))
    }
    /// Fails unless every byte was consumed.
    ///
    /// # Errors
    /// `DriftInput` on trailing bytes.
    pub fn finish(&self) -> Result<()> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(Error::DriftInput(format!(
                "{}: {} trailing bytes",
                self.what,
                self.data.len() - self.pos
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::default();
        w.bytes(b"MAG");
        w.u32(7);
        w.f64s(&[1.5, -2.0]);
        w.str("age");
        let mut r = Reader::new(&w.buf, "test");
        r.magic(b"MAG").expect("test input is valid");
        assert_eq!(r.u32().expect("test input is valid"), 7);
        assert_eq!(r.f64s().expect("test input is valid"), vec![1.5, -2.0]);
        assert_eq!(r.str().expect("test input is valid"), "age");
        r.finish().expect("test input is valid");
        let mut short = Reader::new(&w.buf[..10], "test");
        short.magic(b"MAG").expect("test input is valid");
        short.u32().expect("test input is valid");
        assert!(short.f64s().is_err());
    }
}
