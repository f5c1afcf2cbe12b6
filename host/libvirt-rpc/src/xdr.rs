//! XDR (RFC 4506) encoding as libvirt's protocol uses it: big-endian 4-byte words, 8-byte
//! hypers, strings and opaques padded to 4 bytes, `char`/`short` widened to a word, optional
//! data as a 0/1 word. Decoding is strict: every length is checked against the `.x` maximum and
//! the bytes left before anything is allocated, so hostile input costs at most its own size.

use std::fmt;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XdrError {
    /// The payload ended inside a value.
    #[error("XDR data ends early")]
    Short,
    /// A string or array longer than the protocol's maximum.
    #[error("XDR length {len} exceeds the maximum {max}")]
    TooLong {
        /// The length announced.
        len: u32,
        /// The `.x` maximum.
        max: u32,
    },
    /// A string that is not UTF-8.
    #[error("XDR string is not valid UTF-8")]
    NotUtf8,
    /// A narrow integer outside its range, or non-zero padding.
    #[error("XDR value {0} out of range")]
    Range(i64),
    /// Bytes left over after the last field.
    #[error("{0} trailing bytes after the XDR value")]
    Trailing(usize),
}

/// Decoder over one payload.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reader({} bytes left)", self.buf.len())
    }
}

fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), XdrError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(XdrError::Trailing(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        if self.buf.len() < n {
            return Err(XdrError::Short);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn word(&mut self) -> Result<[u8; 4], XdrError> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// A length word, checked against `max` and against what is left (each element takes at
    /// least `min_elem` bytes), before the caller allocates.
    fn length(&mut self, max: u32, min_elem: usize) -> Result<usize, XdrError> {
        let len = u32::from_be_bytes(self.word()?);
        if len > max {
            return Err(XdrError::TooLong { len, max });
        }
        let len = len as usize;
        if len.saturating_mul(min_elem) > self.buf.len() {
            return Err(XdrError::Short);
        }
        Ok(len)
    }

    /// Variable-length bytes (`opaque x<max>` and the body of `string x<max>`), unpadded.
    fn bytes(&mut self, max: u32) -> Result<&'a [u8], XdrError> {
        let len = self.length(max, 1)?;
        let body = self.take(padded(len))?;
        let (data, pad) = body.split_at(len);
        if pad.iter().any(|&b| b != 0) {
            return Err(XdrError::Range(i64::from(pad[0])));
        }
        Ok(data)
    }

    /// `string x<max>`.
    pub fn string(&mut self, max: u32) -> Result<String, XdrError> {
        let b = self.bytes(max)?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| XdrError::NotUtf8)
    }

    /// `opaque x<max>`.
    pub fn opaque_var(&mut self, max: u32) -> Result<Vec<u8>, XdrError> {
        self.bytes(max).map(<[u8]>::to_vec)
    }

    /// `opaque x[N]`.
    pub fn opaque_fixed<const N: usize>(&mut self) -> Result<[u8; N], XdrError> {
        let body = self.take(padded(N))?;
        let mut out = [0u8; N];
        out.copy_from_slice(&body[..N]);
        Ok(out)
    }

    /// `T x<max>`, each element read by `f` (every XDR element takes at least one word, which
    /// bounds the count by the bytes left).
    pub fn array<T>(
        &mut self,
        max: u32,
        mut f: impl FnMut(&mut Self) -> Result<T, XdrError>,
    ) -> Result<Vec<T>, XdrError> {
        let len = self.length(max, 4)?;
        (0..len).map(|_| f(self)).collect()
    }

    /// `T x[n]`.
    pub fn array_fixed<T>(
        &mut self,
        n: usize,
        mut f: impl FnMut(&mut Self) -> Result<T, XdrError>,
    ) -> Result<Vec<T>, XdrError> {
        if n.saturating_mul(4) > self.buf.len() {
            return Err(XdrError::Short);
        }
        (0..n).map(|_| f(self)).collect()
    }

    /// `T *x`.
    pub fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, XdrError>) -> Result<Option<T>, XdrError> {
        // Any non-zero word is "present", as libvirt's own decoder (xdr_pointer, xdr_bool)
        // reads it: go-libvirt sends CONNECT_OPEN's name marker as 0x01000000.
        match i32::decode(self)? {
            0 => Ok(None),
            _ => f(self).map(Some),
        }
    }
}

/// Encoder into a growing buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An encoder appending to `buf`.
    pub fn new(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn word(&mut self, w: [u8; 4]) {
        self.buf.extend_from_slice(&w);
    }

    fn bytes(&mut self, b: &[u8]) {
        // Lengths are bounded by the caller's maxima (all below 2^32); a longer value cannot be
        // built by this crate's users, who never pass more than 32 MiB packets.
        self.word((b.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(b);
        self.buf.resize(self.buf.len() + padded(b.len()) - b.len(), 0);
    }

    /// `string x<max>` (the maximum is the peer's to check; this side never sends more than it
    /// was built to).
    pub fn string(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// `opaque x<max>`.
    pub fn opaque_var(&mut self, b: &[u8]) {
        self.bytes(b);
    }

    /// `opaque x[N]`.
    pub fn opaque_fixed(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        self.buf.resize(self.buf.len() + padded(b.len()) - b.len(), 0);
    }

    /// `T x<max>`, each element written by `f`.
    pub fn array<T>(&mut self, v: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.word((v.len() as u32).to_be_bytes());
        v.iter().for_each(|x| f(self, x));
    }

    /// `T x[n]`: exactly `n` elements, missing ones as `T::default()`.
    pub fn array_fixed<T: Default>(&mut self, v: &[T], n: usize, mut f: impl FnMut(&mut Self, &T)) {
        let fill = T::default();
        (0..n).for_each(|i| f(self, v.get(i).unwrap_or(&fill)));
    }

    /// `T *x`.
    pub fn option<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => 0i32.encode(self),
            Some(x) => {
                1i32.encode(self);
                f(self, x);
            }
        }
    }
}

/// A type with an XDR form.
pub trait Xdr: Sized {
    /// Appends the encoding.
    fn encode(&self, w: &mut Writer);
    /// Reads one value.
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError>;
}

/// Encodes `v` alone.
pub fn to_bytes<T: Xdr>(v: &T) -> Vec<u8> {
    let mut w = Writer::default();
    v.encode(&mut w);
    w.into_bytes()
}

/// Decodes exactly one `T` from `b`, refusing trailing bytes.
pub fn from_bytes<T: Xdr>(b: &[u8]) -> Result<T, XdrError> {
    let mut r = Reader::new(b);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

impl Xdr for () {
    fn encode(&self, _: &mut Writer) {}
    fn decode(_: &mut Reader<'_>) -> Result<Self, XdrError> {
        Ok(())
    }
}

impl Xdr for i32 {
    fn encode(&self, w: &mut Writer) {
        w.word(self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        r.word().map(i32::from_be_bytes)
    }
}

impl Xdr for u32 {
    fn encode(&self, w: &mut Writer) {
        w.word(self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        r.word().map(u32::from_be_bytes)
    }
}

impl Xdr for i64 {
    fn encode(&self, w: &mut Writer) {
        w.buf.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        let b = r.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
}

impl Xdr for u64 {
    fn encode(&self, w: &mut Writer) {
        w.buf.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        i64::decode(r).map(|v| v as u64)
    }
}

impl Xdr for f64 {
    fn encode(&self, w: &mut Writer) {
        w.buf.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        u64::decode(r).map(f64::from_bits)
    }
}

impl Xdr for f32 {
    fn encode(&self, w: &mut Writer) {
        w.word(self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        u32::decode(r).map(f32::from_bits)
    }
}

impl Xdr for bool {
    fn encode(&self, w: &mut Writer) {
        i32::from(*self).encode(w);
    }
    /// Any non-zero word is true, as libvirt's `xdr_bool` reads it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        Ok(i32::decode(r)? != 0)
    }
}

/// `char`, `unsigned char`, `short` and `unsigned short`: one word each on the wire, range
/// checked on the way in.
macro_rules! narrow {
    ($($t:ty),*) => {$(
        impl Xdr for $t {
            fn encode(&self, w: &mut Writer) {
                i32::from(*self).encode(w);
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, XdrError> {
                let v = i32::decode(r)?;
                <$t>::try_from(v).map_err(|_| XdrError::Range(i64::from(v)))
            }
        }
    )*};
}
narrow!(i8, u8, i16, u16);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_and_checked() {
        let mut w = Writer::default();
        w.string("test:///default");
        let b = w.into_bytes();
        assert_eq!(b.len(), 4 + 16);
        assert_eq!(&b[..4], &[0, 0, 0, 15]);
        assert_eq!(b[19], 0);
        assert_eq!(Reader::new(&b).string(20).unwrap(), "test:///default");
        assert_eq!(Reader::new(&b).string(10), Err(XdrError::TooLong { len: 15, max: 10 }));
        assert_eq!(Reader::new(&b[..18]).string(20), Err(XdrError::Short));
        let mut bad = b.clone();
        bad[19] = 1;
        assert_eq!(Reader::new(&bad).string(20), Err(XdrError::Range(1)));
    }

    #[test]
    fn narrow_integers_take_a_word_and_are_range_checked() {
        assert_eq!(to_bytes(&2u16), vec![0, 0, 0, 2]);
        assert_eq!(from_bytes::<u8>(&[0, 0, 1, 0]), Err(XdrError::Range(256)));
        // libvirt's decoder takes any non-zero word as true and as "pointer present".
        assert_eq!(from_bytes::<bool>(&[0, 0, 0, 2]), Ok(true));
        let go_libvirt_open = [1, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 0];
        assert_eq!(Reader::new(&go_libvirt_open).option(|r| r.string(10)), Ok(Some("x".to_owned())));
    }

    #[test]
    fn huge_array_counts_fail_before_allocating() {
        let b = [0x00, 0x00, 0x40, 0x00]; // 16384 elements announced, none present
        assert_eq!(Reader::new(&b).array(16384, i32::decode), Err(XdrError::Short));
        assert_eq!(Reader::new(&b).array(10, i32::decode), Err(XdrError::TooLong { len: 16384, max: 10 }));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert_eq!(from_bytes::<i32>(&[0, 0, 0, 1, 0, 0, 0, 0]), Err(XdrError::Trailing(4)));
    }
}
