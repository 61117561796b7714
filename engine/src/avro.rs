//! The little of Avro's binary encoding that Strata's Iceberg files need, written and read
//! directly: a manifest of a hundred chunks is encoded in microseconds, and the entries of an
//! earlier manifest are copied as they are, where building and walking `apache_avro` values
//! took milliseconds of every commit. `apache_avro` still reads the files in tests and in
//! `strata iceberg` listings.
//!
//! An object container file: the magic `Obj\x01`, a map of metadata (the schema text, the
//! codec), a 16-byte sync marker, then blocks of (record count, byte length, records, marker).
//! Ints and longs are zig-zag varints; strings and bytes are a length, then the bytes; a union
//! is its branch index, then the value; an array is blocks of (count, items), ending with 0.

use std::io::{Read, Write};

/// Appends a zig-zag varint (Avro's `int` and `long`).
pub(crate) fn long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7F) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends `bytes` or `string`: the length, then the bytes.
pub(crate) fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// An object container file of `count` records, already encoded one after another in
/// `records`, deflated in one block. `metadata` holds every header entry (the schema text
/// among them), in the order given.
pub(crate) fn container(
    metadata: &[(&str, &[u8])],
    marker: [u8; 16],
    count: usize,
    records: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut out = b"Obj\x01".to_vec();
    long(&mut out, metadata.len() as i64);
    for (k, v) in metadata {
        bytes(&mut out, k.as_bytes());
        bytes(&mut out, v);
    }
    long(&mut out, 0);
    out.extend_from_slice(&marker);
    if count > 0 {
        let mut enc = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(records.len() / 2),
            flate2::Compression::fast(),
        );
        enc.write_all(records)?;
        let deflated = enc.finish()?;
        long(&mut out, count as i64);
        bytes(&mut out, &deflated);
        out.extend_from_slice(&marker);
    }
    Ok(out)
}

/// A reader of encoded values.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, at: 0 }
    }

    pub(crate) fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    pub(crate) fn long(&mut self) -> Option<i64> {
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            if shift > 63 {
                return None;
            }
            z |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.long()?).ok()?;
        let end = self.at.checked_add(n)?;
        let b = self.buf.get(self.at..end)?;
        self.at = end;
        Some(b)
    }

    fn fixed(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let b = self.buf.get(self.at..end)?;
        self.at = end;
        Some(b)
    }

    /// Skips an array whose items `item` skips.
    pub(crate) fn skip_array(&mut self, item: impl Fn(&mut Self) -> Option<()>) -> Option<()> {
        loop {
            let mut n = self.long()?;
            if n == 0 {
                return Some(());
            }
            if n < 0 {
                // A negative count is followed by the block's byte length.
                n = n.checked_neg()?;
                self.long()?;
            }
            for _ in 0..n {
                item(self)?;
            }
        }
    }
}

/// The records of a container file: its `avro.schema` text and its records' bytes, one after
/// another (blocks decompressed), with their count. `None` when the bytes are not such a file
/// or use a codec other than `null` and `deflate`.
pub(crate) fn records(file: &[u8]) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    let mut c = Cursor::new(file);
    if c.fixed(4)? != b"Obj\x01" {
        return None;
    }
    let (mut schema, mut codec) = (None, b"null".to_vec());
    loop {
        let mut n = c.long()?;
        if n == 0 {
            break;
        }
        if n < 0 {
            n = n.checked_neg()?;
            c.long()?;
        }
        for _ in 0..n {
            let k = c.bytes()?;
            let v = c.bytes()?;
            match k {
                b"avro.schema" => schema = Some(v.to_vec()),
                b"avro.codec" => codec = v.to_vec(),
                _ => {}
            }
        }
    }
    let marker = c.fixed(16)?;
    let mut out = Vec::new();
    let mut count = 0usize;
    while !c.done() {
        count += usize::try_from(c.long()?).ok()?;
        let block = c.bytes()?;
        match codec.as_slice() {
            b"null" => out.extend_from_slice(block),
            b"deflate" => {
                flate2::read::DeflateDecoder::new(block)
                    .read_to_end(&mut out)
                    .ok()?;
            }
            _ => return None,
        }
        if c.fixed(16)? != marker {
            return None;
        }
    }
    Some((schema?, out, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_round_trip_as_zig_zag_varints() {
        for n in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            long(&mut out, n);
            let mut c = Cursor::new(&out);
            assert_eq!(c.long(), Some(n));
            assert!(c.done());
        }
        let mut out = Vec::new();
        long(&mut out, 150);
        assert_eq!(out, vec![0xAC, 0x02]);
    }

    #[test]
    fn a_container_reads_back_and_a_damaged_one_does_not() {
        let mut recs = Vec::new();
        for s in ["a", "bc", "def"] {
            bytes(&mut recs, s.as_bytes());
        }
        let file = container(
            &[("avro.schema", b"\"string\""), ("avro.codec", b"deflate")],
            [7; 16],
            3,
            &recs,
        )
        .expect("written");
        let (schema, data, count) = records(&file).expect("read");
        assert_eq!((schema.as_slice(), count), (&b"\"string\""[..], 3));
        assert_eq!(data, recs);
        // apache_avro reads it too.
        let values: Vec<_> = apache_avro::Reader::new(&file[..])
            .expect("a container")
            .map(|v| v.expect("a value"))
            .collect();
        assert_eq!(values.len(), 3);
        assert!(records(&file[..file.len() - 1]).is_none());
    }
}
