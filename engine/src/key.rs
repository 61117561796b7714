//! Primary keys as order-preserving bytes: comparing two encoded keys as byte strings gives
//! the same order as comparing the key values column by column. The encoding is Strata's own
//! and stable, because encoded keys are stored in index nodes and decide chunk boundaries.
//!
//! Integers: big-endian with the sign bit flipped. Booleans: one byte. Strings and binaries:
//! bytes with `0x00` escaped as `0x00 0xFF`, ended by `0x00 0x00`. Dates, timestamps and
//! decimals: as their integer storage.

use crate::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use crate::arrow::datatypes::*;
use crate::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};

/// The encoded keys of a run of rows, in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    data: Vec<u8>,
    offsets: Vec<usize>,
}

impl Keys {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Keys {
            data: Vec::with_capacity(bytes),
            offsets,
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }

    /// The bytes of all the keys together (what a copy of them needs beside their offsets).
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    pub fn last(&self) -> Option<&[u8]> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    pub fn push(&mut self, key: &[u8]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.data.extend_from_slice(key);
        self.offsets.push(self.data.len());
    }

    /// A copy of rows `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Keys {
        let mut out = Keys::with_capacity(end - start, self.offsets[end] - self.offsets[start]);
        out.extend_range(self, start, end);
        out
    }

    pub fn append(&mut self, other: &Keys) {
        self.extend_range(other, 0, other.len());
    }

    /// Appends rows `start..end` of `other`, their bytes in one copy.
    pub fn extend_range(&mut self, other: &Keys, start: usize, end: usize) {
        if start >= end {
            return;
        }
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let (from, to) = (other.offsets[start], other.offsets[end]);
        let shift = self.data.len() as isize - from as isize;
        self.data.extend_from_slice(&other.data[from..to]);
        self.offsets.extend(
            other.offsets[start + 1..=end]
                .iter()
                .map(|&o| (o as isize + shift) as usize),
        );
    }

    /// Index of the first row at or after `start` whose key is not less than `key` (rows are
    /// sorted). Searched outwards from `start` first, so that a merge of many keys walking
    /// forward costs about one comparison per row it passes, and one of few keys a binary
    /// search each.
    pub fn lower_bound_from(&self, start: usize, key: &[u8]) -> usize {
        let n = self.len();
        let (mut lo, mut step) = (start, 1);
        // Gallop: find hi with key <= keys[hi] (or the end), lo the last step below it.
        let mut hi = loop {
            let at = lo.saturating_add(step - 1);
            if at >= n {
                break n;
            }
            if self.get(at) >= key {
                break at;
            }
            lo = at + 1;
            step *= 2;
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        hi
    }

    /// The first 16 bytes of row `i`'s key as a number (zero-padded): keys compare as their
    /// prefixes do, unless the prefixes are equal. A sort compares these first, which costs
    /// less than comparing bytes.
    pub fn prefix(&self, i: usize) -> u128 {
        key_prefix(self.get(i))
    }

    /// Whether one of the (sorted) rows has the key `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        let at = self.partition_point_le(key);
        at > 0 && self.get(at - 1) == key
    }

    /// Index of the first row whose key is greater than `bound` (rows are sorted).
    pub fn partition_point_le(&self, bound: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid) <= bound {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The first 16 bytes of an encoded key as a number (zero-padded), see [`Keys::prefix`].
pub fn key_prefix(key: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    let n = key.len().min(16);
    bytes[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(bytes)
}

/// Rows with their encoded keys.
#[derive(Debug, Clone)]
pub struct Rows {
    pub batch: RecordBatch,
    pub keys: Keys,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn slice(&self, start: usize, end: usize) -> Rows {
        Rows {
            batch: self.batch.slice(start, end - start),
            keys: self.keys.slice(start, end),
        }
    }
}

fn put_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

macro_rules! signed {
    ($arr:expr, $t:ty, $u:ty, $row:expr, $out:expr) => {{
        let v = $arr.as_primitive::<$t>().value($row);
        let flipped = (v as $u) ^ (1 as $u).rotate_right(1);
        $out.extend_from_slice(&flipped.to_be_bytes());
    }};
}

macro_rules! unsigned {
    ($arr:expr, $t:ty, $row:expr, $out:expr) => {{
        $out.extend_from_slice(&$arr.as_primitive::<$t>().value($row).to_be_bytes());
    }};
}

fn encode_value(col: &ArrayRef, row: usize, out: &mut Vec<u8>) -> Result<()> {
    match col.data_type() {
        DataType::Int8 => signed!(col, Int8Type, u8, row, out),
        DataType::Int16 => signed!(col, Int16Type, u16, row, out),
        DataType::Int32 => signed!(col, Int32Type, u32, row, out),
        DataType::Int64 => signed!(col, Int64Type, u64, row, out),
        DataType::Date32 => signed!(col, Date32Type, u32, row, out),
        DataType::Timestamp(TimeUnit::Second, _) => {
            signed!(col, TimestampSecondType, u64, row, out)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            signed!(col, TimestampMillisecondType, u64, row, out)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            signed!(col, TimestampMicrosecondType, u64, row, out)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            signed!(col, TimestampNanosecondType, u64, row, out)
        }
        DataType::Decimal128(_, _) => signed!(col, Decimal128Type, u128, row, out),
        DataType::UInt8 => unsigned!(col, UInt8Type, row, out),
        DataType::UInt16 => unsigned!(col, UInt16Type, row, out),
        DataType::UInt32 => unsigned!(col, UInt32Type, row, out),
        DataType::UInt64 => unsigned!(col, UInt64Type, row, out),
        DataType::Boolean => out.push(col.as_boolean().value(row) as u8),
        DataType::Utf8 => put_escaped(out, col.as_string::<i32>().value(row).as_bytes()),
        DataType::Binary => put_escaped(out, col.as_binary::<i32>().value(row)),
        other => {
            return Err(Error::InvalidPrimaryKey {
                reason: format!("type {other} cannot be part of a key"),
            })
        }
    }
    Ok(())
}

/// Where a null key was found: the column and the row within the batch.
#[derive(Debug)]
pub struct NullKeyAt {
    pub column: String,
    pub row: usize,
}

/// Encodes the key columns `key_idx` of every row of `batch`.
pub fn encode_keys(batch: &RecordBatch, key_idx: &[usize]) -> Result<Result<Keys, NullKeyAt>> {
    let cols: Vec<&ArrayRef> = key_idx.iter().map(|&i| batch.column(i)).collect();
    for (c, &i) in cols.iter().zip(key_idx) {
        if c.null_count() > 0 {
            let row = (0..c.len()).find(|&r| c.is_null(r)).unwrap_or(0);
            return Ok(Err(NullKeyAt {
                column: batch.schema().field(i).name().clone(),
                row,
            }));
        }
    }
    if let Some(keys) = encode_fixed_width(&cols) {
        return Ok(Ok(keys));
    }
    encode_by_row(&cols, batch.num_rows()).map(Ok)
}

/// The keys of `rows` rows of the key columns `cols` (no nulls), a row at a time.
fn encode_by_row(cols: &[&ArrayRef], rows: usize) -> Result<Keys> {
    let mut keys = Keys::with_capacity(rows, rows * 9 * cols.len());
    let mut buf = Vec::with_capacity(64);
    for r in 0..rows {
        buf.clear();
        for c in cols {
            encode_value(c, r, &mut buf)?;
        }
        keys.push(&buf);
    }
    Ok(keys)
}

/// The bytes a value of a fixed-width key type takes encoded, if the type is one.
fn fixed_width(dt: &DataType) -> Option<usize> {
    Some(match dt {
        DataType::Int8 | DataType::UInt8 | DataType::Boolean => 1,
        DataType::Int16 | DataType::UInt16 => 2,
        DataType::Int32 | DataType::UInt32 | DataType::Date32 => 4,
        DataType::Int64 | DataType::UInt64 | DataType::Timestamp(_, _) => 8,
        DataType::Decimal128(_, _) => 16,
        _ => return None,
    })
}

/// The keys of the key columns `cols` (no nulls) when every one has a fixed width (integers,
/// dates, timestamps, decimals, booleans: most keys): written a column at a time into rows
/// of one width, the same bytes as [`encode_value`] writes a value at a time. `None` for
/// other types (text, binary).
fn encode_fixed_width(cols: &[&ArrayRef]) -> Option<Keys> {
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| fixed_width(c.data_type()))
        .collect::<Option<_>>()?;
    let width: usize = widths.iter().sum();
    if width == 0 {
        return None;
    }
    let rows = cols.first().map_or(0, |c| c.len());
    let mut data = vec![0u8; rows * width];
    let mut at = 0;
    for (c, w) in cols.iter().zip(&widths) {
        macro_rules! column {
            ($t:ty, $u:ty, $flip:expr) => {{
                let values = c.as_primitive::<$t>().values();
                for (row, v) in data.chunks_exact_mut(width).zip(values.iter()) {
                    let bits = (*v as $u) ^ $flip;
                    row[at..at + w].copy_from_slice(&bits.to_be_bytes());
                }
            }};
        }
        match c.data_type() {
            DataType::Int8 => column!(Int8Type, u8, 1u8.rotate_right(1)),
            DataType::Int16 => column!(Int16Type, u16, 1u16.rotate_right(1)),
            DataType::Int32 => column!(Int32Type, u32, 1u32.rotate_right(1)),
            DataType::Int64 => column!(Int64Type, u64, 1u64.rotate_right(1)),
            DataType::Date32 => column!(Date32Type, u32, 1u32.rotate_right(1)),
            DataType::Timestamp(TimeUnit::Second, _) => {
                column!(TimestampSecondType, u64, 1u64.rotate_right(1))
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                column!(TimestampMillisecondType, u64, 1u64.rotate_right(1))
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                column!(TimestampMicrosecondType, u64, 1u64.rotate_right(1))
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                column!(TimestampNanosecondType, u64, 1u64.rotate_right(1))
            }
            DataType::Decimal128(_, _) => column!(Decimal128Type, u128, 1u128.rotate_right(1)),
            DataType::UInt8 => column!(UInt8Type, u8, 0),
            DataType::UInt16 => column!(UInt16Type, u16, 0),
            DataType::UInt32 => column!(UInt32Type, u32, 0),
            DataType::UInt64 => column!(UInt64Type, u64, 0),
            DataType::Boolean => {
                let values = c.as_boolean();
                for (r, row) in data.chunks_exact_mut(width).enumerate() {
                    row[at] = values.value(r) as u8;
                }
            }
            _ => return None,
        }
        at += w;
    }
    Some(Keys {
        data,
        offsets: (0..=rows).map(|r| r * width).collect(),
    })
}

/// Shows the key of one row for messages: `(id=42)` or `(region=eu, id=7)`.
pub fn format_key(batch: &RecordBatch, key_idx: &[usize], row: usize) -> String {
    let opts = FormatOptions::default().with_null("null");
    let parts: Vec<String> = key_idx
        .iter()
        .map(|&i| {
            let name = batch.schema().field(i).name().clone();
            let value = ArrayFormatter::try_new(batch.column(i).as_ref(), &opts)
                .map(|f| f.value(row).to_string())
                .unwrap_or_else(|_| "?".into());
            format!("{name}={value}")
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// A range of encoded keys. A bound may be a prefix of a key (the first key columns only):
/// it then stands for every key that starts with it, so `Included` takes all of them in and
/// `Excluded` leaves all of them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: std::ops::Bound<Vec<u8>>,
    pub upper: std::ops::Bound<Vec<u8>>,
}

/// Compares a key with a bound that may be a prefix of keys: every key starting with the
/// bound is `Equal` to it.
fn cmp_bound(key: &[u8], bound: &[u8]) -> std::cmp::Ordering {
    if key.starts_with(bound) {
        std::cmp::Ordering::Equal
    } else {
        key.cmp(bound)
    }
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            lower: std::ops::Bound::Unbounded,
            upper: std::ops::Bound::Unbounded,
        }
    }

    fn above_lower(&self, key: &[u8]) -> bool {
        use std::ops::Bound::*;
        match &self.lower {
            Unbounded => true,
            Included(b) => cmp_bound(key, b).is_ge(),
            Excluded(b) => cmp_bound(key, b).is_gt(),
        }
    }

    fn below_upper(&self, key: &[u8]) -> bool {
        use std::ops::Bound::*;
        match &self.upper {
            Unbounded => true,
            Included(b) => cmp_bound(key, b).is_le(),
            Excluded(b) => cmp_bound(key, b).is_lt(),
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.above_lower(key) && self.below_upper(key)
    }

    /// Whether some key in `(after, last]` may be in the range (`after`: none below).
    pub fn overlaps(&self, after: Option<&[u8]>, last: &[u8]) -> bool {
        // Every key of the span is above `after` and at most `last`: the span is out of
        // range when `last` is below the lower bound, or `after` is past the upper bound.
        if !self.above_lower(last) {
            return false;
        }
        match after {
            Some(a) => {
                use std::ops::Bound::*;
                match &self.upper {
                    Unbounded => true,
                    Included(b) => cmp_bound(a, b).is_le(),
                    Excluded(b) => cmp_bound(a, b).is_lt(),
                }
            }
            None => true,
        }
    }

    /// Whether every key in `(after, last]` is in the range.
    pub fn covers(&self, after: Option<&[u8]>, last: &[u8]) -> bool {
        use std::ops::Bound::*;
        let lower = match (&self.lower, after) {
            (Unbounded, _) => true,
            (Included(b), Some(a)) => cmp_bound(a, b).is_ge(),
            (Excluded(b), Some(a)) => cmp_bound(a, b).is_gt(),
            (_, None) => false,
        };
        lower && self.below_upper(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::array::{Int64Array, StringArray};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn keys_of(a: Vec<i64>, b: Vec<String>) -> Keys {
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Int64Array::from(a)) as ArrayRef),
            ("b", Arc::new(StringArray::from(b)) as ArrayRef),
        ])
        .expect("batch");
        encode_keys(&batch, &[0, 1])
            .expect("types")
            .expect("no nulls")
    }

    /// A column of `values` (as integers) in the `kind`-th fixed-width key type, sliced to
    /// start at `skip`.
    fn fixed_column(kind: usize, values: &[i64], skip: usize) -> ArrayRef {
        use crate::arrow::array::*;
        let v = values.iter();
        let array: ArrayRef = match kind {
            0 => Arc::new(Int8Array::from_iter_values(v.map(|&x| x as i8))),
            1 => Arc::new(Int16Array::from_iter_values(v.map(|&x| x as i16))),
            2 => Arc::new(Int32Array::from_iter_values(v.map(|&x| x as i32))),
            3 => Arc::new(Int64Array::from_iter_values(v.copied())),
            4 => Arc::new(UInt8Array::from_iter_values(v.map(|&x| x as u8))),
            5 => Arc::new(UInt16Array::from_iter_values(v.map(|&x| x as u16))),
            6 => Arc::new(UInt32Array::from_iter_values(v.map(|&x| x as u32))),
            7 => Arc::new(UInt64Array::from_iter_values(v.map(|&x| x as u64))),
            8 => Arc::new(Date32Array::from_iter_values(v.map(|&x| x as i32))),
            9 => Arc::new(TimestampMillisecondArray::from_iter_values(v.copied())),
            10 => Arc::new(
                TimestampNanosecondArray::from_iter_values(v.copied()).with_timezone("UTC"),
            ),
            11 => Arc::new(
                Decimal128Array::from_iter_values(v.map(|&x| i128::from(x) * 1_000_003))
                    .with_precision_and_scale(38, 2)
                    .expect("decimal"),
            ),
            _ => Arc::new(BooleanArray::from_iter(v.map(|&x| Some(x % 2 == 0)))),
        };
        array.slice(skip, values.len() - skip)
    }

    proptest! {
        #[test]
        fn fixed_width_keys_are_the_bytes_a_row_at_a_time_gives(
            kinds in proptest::collection::vec(0usize..13, 1..4),
            values in proptest::collection::vec(any::<i64>(), 0..40),
            skip in 0usize..5,
        ) {
            let skip = skip.min(values.len());
            let cols: Vec<ArrayRef> =
                kinds.iter().enumerate().map(|(i, &k)| {
                    let shifted: Vec<i64> =
                        values.iter().map(|v| v.rotate_left(i as u32 * 7)).collect();
                    fixed_column(k, &shifted, skip)
                }).collect();
            let refs: Vec<&ArrayRef> = cols.iter().collect();
            let fast = encode_fixed_width(&refs).expect("fixed-width types");
            let slow = encode_by_row(&refs, values.len() - skip).expect("encodes");
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn encoded_keys_sort_like_their_values(
            x in (any::<i64>(), ".{0,6}"), y in (any::<i64>(), ".{0,6}")
        ) {
            let keys = keys_of(vec![x.0, y.0], vec![x.1.clone(), y.1.clone()]);
            prop_assert_eq!(keys.get(0).cmp(keys.get(1)), x.cmp(&y));
        }

        #[test]
        fn keys_compare_as_their_prefixes_unless_those_are_equal(
            a in proptest::collection::vec(any::<u8>(), 0..24),
            b in proptest::collection::vec(any::<u8>(), 0..24),
            shared in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let a: Vec<u8> = shared.iter().chain(&a).copied().collect();
            let b: Vec<u8> = shared.iter().chain(&b).copied().collect();
            let (pa, pb) = (key_prefix(&a), key_prefix(&b));
            if pa != pb {
                prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
            prop_assert_eq!((pa, &a).cmp(&(pb, &b)), a.cmp(&b));
        }

        #[test]
        fn a_search_from_a_row_finds_what_a_scan_finds(
            mut values in proptest::collection::vec(0i64..50, 0..40),
            start in 0usize..45,
            probe in -1i64..52,
        ) {
            values.sort_unstable();
            let n = values.len();
            let keys = keys_of(values.clone(), vec![String::new(); n]);
            let probe = keys_of(vec![probe], vec![String::new()]);
            let start = start.min(n);
            let scanned = (start..n).find(|&i| keys.get(i) >= probe.get(0)).unwrap_or(n);
            prop_assert_eq!(keys.lower_bound_from(start, probe.get(0)), scanned);
        }

        #[test]
        fn ranges_copied_together_are_the_rows_one_by_one(
            values in proptest::collection::vec((any::<i64>(), ".{0,4}"), 0..30),
            cuts in proptest::collection::vec(0usize..31, 0..4),
        ) {
            let (a, b): (Vec<i64>, Vec<String>) = values.into_iter().unzip();
            let keys = keys_of(a, b);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(keys.len())).collect();
            cuts.push(0);
            cuts.push(keys.len());
            cuts.sort_unstable();
            let mut joined = Keys::default();
            for w in cuts.windows(2) {
                joined.extend_range(&keys, w[0], w[1]);
                let slice = keys.slice(w[0], w[1]);
                prop_assert_eq!(slice.len(), w[1] - w[0]);
                for i in w[0]..w[1] {
                    prop_assert_eq!(slice.get(i - w[0]), keys.get(i));
                }
            }
            prop_assert_eq!(joined.len(), keys.len());
            for i in 0..keys.len() {
                prop_assert_eq!(joined.get(i), keys.get(i));
            }
        }
    }

    #[test]
    fn strings_with_zero_bytes_keep_their_order() {
        let keys = keys_of(vec![1, 1], vec!["a\0b".into(), "a".into()]);
        assert!(keys.get(1) < keys.get(0));
    }
}
