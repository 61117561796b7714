//! A CSV file's text as batches of columns, read as Arrow's CSV reader reads it, and its
//! column types inferred as Arrow infers them.
//!
//! Most CSV files hold no quote at all, and end their lines with `\n` alone. Such lines are
//! cut into fields here (the delimiters and line breaks of 64 bytes at a time found as a bit
//! mask), each text field copied once, straight into its column, and each int64 or float64
//! field parsed as it is cut. Arrow's reader (`csv_core`'s state machine, byte by byte) first
//! copies every field into a record buffer, then again into a text column, which the import
//! then parsed.
//!
//! From the first line that holds anything else (a quote, a carriage return, text that is
//! not UTF-8, a number that does not parse) to the end of the file, the text goes to Arrow's
//! reader, unchanged: it reads quoting, every line ending, and says what is wrong with a line
//! (its line numbers counted from the file's start, as if it had read all of it). Blank
//! lines are passed over, and an empty field is a null, as Arrow's reader has them; the
//! tests compare the two on random text.

use std::io::{ErrorKind, Read};

use std::sync::{Arc, LazyLock};

use regex::RegexSet;

use arrow_buffer::{ArrowNativeType, Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_cast::parse::Parser;

use crate::arrow::array::{ArrayRef, PrimitiveArray, RecordBatch, StringArray};
use crate::arrow::csv::reader::Decoder;
use crate::arrow::csv::ReaderBuilder;
use crate::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float64Type, Int64Type, Schema, SchemaRef,
};
use crate::arrow::error::ArrowError;

/// Bytes read from the file at once.
const READ_SIZE: usize = 1 << 20;

/// Reads a CSV file (with a header line) into batches of `schema`, whose columns are all
/// `Utf8`, in the file's column order.
pub(crate) struct CsvText<R> {
    reader: R,
    schema: SchemaRef,
    delimiter: u8,
    batch_rows: usize,
    buf: Vec<u8>,
    /// The end of the text read into `buf`.
    end: usize,
    /// The first byte of `buf` not read into a batch yet.
    start: usize,
    /// `buf[start..clean]` holds no quote and no carriage return.
    clean: usize,
    /// The file's end has been read.
    eof: bool,
    /// Whether the header line is still to be passed over.
    header: bool,
    /// Records (non-blank lines) read into batches here, the header's included.
    records: u64,
    /// Arrow's reader, which reads the rest of the file once a line is not plain.
    decoder: Option<Decoder>,
    /// Where a line's fields end (reused from line to line).
    ends: Vec<usize>,
    /// The bytes of text of each column in the last full batch.
    sizes: Vec<usize>,
    /// How each column of plain lines is read.
    parses: Vec<Parse>,
    /// The schema of batches of plain lines (their number columns parsed).
    parsed: SchemaRef,
}

/// How a column of plain lines is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parse {
    /// As text (a text column, or one converted later).
    Text,
    /// As an int64, parsed as the import converts text; when `exact`, a value that the
    /// number would not keep as written (a leading zero) is not taken.
    Int64 { exact: bool },
    /// As a float64, likewise.
    Float64 { exact: bool },
}

/// A column of a batch of plain lines, as it is built.
enum Column {
    /// Text: the values' bytes one after another, where each ends, and which are null.
    Text(Vec<u8>, Vec<i32>, NullBufferBuilder),
    Int64(Numbers<i64>),
    Float64(Numbers<f64>),
}

/// A number column of a batch of plain lines, as it is built.
struct Numbers<T> {
    values: Vec<T>,
    nulls: NullBufferBuilder,
    /// Whether a value the number would not keep as written is refused (see [`Parse`]).
    exact: bool,
}

impl<T: ArrowNativeType> Numbers<T> {
    fn new(rows: usize, exact: bool) -> Self {
        Numbers {
            values: Vec::with_capacity(rows),
            nulls: NullBufferBuilder::new(rows),
            exact,
        }
    }

    /// Appends `field` parsed by `parse` (an empty one is a null).
    fn push(&mut self, field: &str, parse: fn(&str) -> Option<T>) -> Result<(), Stop> {
        if field.is_empty() {
            self.values.push(T::default());
            self.nulls.append_null();
            return Ok(());
        }
        match parse(field) {
            Some(v) if !(self.exact && keeps_no_text(field)) => self.values.push(v),
            _ => return Err(Stop::Number),
        }
        self.nulls.append_non_null();
        Ok(())
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.nulls.truncate(rows);
    }

    fn finish<P: ArrowPrimitiveType<Native = T>>(mut self) -> ArrayRef {
        Arc::new(PrimitiveArray::<P>::new(
            self.values.into(),
            self.nulls.finish(),
        ))
    }
}

impl Column {
    fn new(parse: Parse, rows: usize, bytes: usize) -> Self {
        match parse {
            Parse::Text => {
                let mut ends = Vec::with_capacity(rows + 1);
                ends.push(0);
                // Room for a copy of 16 bytes past the last value (see `Lines::row`).
                Column::Text(
                    Vec::with_capacity(bytes + 16),
                    ends,
                    NullBufferBuilder::new(rows),
                )
            }
            Parse::Int64 { exact } => Column::Int64(Numbers::new(rows, exact)),
            Parse::Float64 { exact } => Column::Float64(Numbers::new(rows, exact)),
        }
    }

    /// Keeps the first `rows` values (those of the lines taken).
    fn truncate(&mut self, rows: usize) {
        match self {
            Column::Text(bytes, ends, nulls) => {
                ends.truncate(rows + 1);
                bytes.truncate(ends.last().map_or(0, |&e| e as usize));
                nulls.truncate(rows);
            }
            Column::Int64(numbers) => numbers.truncate(rows),
            Column::Float64(numbers) => numbers.truncate(rows),
        }
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Column::Text(bytes, ends, mut nulls) => Arc::new(StringArray::try_new(
                OffsetBuffer::new(ScalarBuffer::from(ends)),
                Buffer::from_vec(bytes),
                nulls.finish(),
            )?),
            Column::Int64(numbers) => numbers.finish::<Int64Type>(),
            Column::Float64(numbers) => numbers.finish::<Float64Type>(),
        })
    }
}

impl<R: Read> CsvText<R> {
    pub(crate) fn new(reader: R, schema: SchemaRef, delimiter: u8, batch_rows: usize) -> Self {
        CsvText {
            reader,
            delimiter,
            batch_rows: batch_rows.max(1),
            buf: Vec::new(),
            end: 0,
            start: 0,
            clean: 0,
            eof: false,
            header: true,
            records: 0,
            decoder: None,
            ends: Vec::new(),
            sizes: Vec::new(),
            parses: Vec::new(),
            parsed: schema.clone(),
            schema,
        }
    }

    /// Plain lines read with each column parsed as `parses` says (one per column; text
    /// otherwise). A line whose number does not parse, and every line after it, is read as
    /// text by Arrow's reader (whose text the import converts, and refuses with the value and
    /// its line).
    pub(crate) fn parsing(mut self, parses: Vec<Parse>) -> Self {
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .zip(parses.iter().chain(std::iter::repeat(&Parse::Text)))
            .map(|(f, p)| match p {
                Parse::Text => f.as_ref().clone(),
                Parse::Int64 { .. } => f.as_ref().clone().with_data_type(DataType::Int64),
                Parse::Float64 { .. } => f.as_ref().clone().with_data_type(DataType::Float64),
            })
            .collect();
        self.parsed = Arc::new(Schema::new(fields));
        self.parses = parses;
        self
    }

    /// Reads more of the file into `buf` (keeping `buf[start..]`), and extends the clean
    /// part over it. At the file's end, a last line without a line break gets one, when it
    /// is clean (Arrow's reader takes it as a line all the same).
    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            // (Once Arrow's reader reads the text, `clean` no longer matters.)
            self.clean = self.clean.saturating_sub(self.start);
            self.start = 0;
        }
        // The buffer is cleared once, and grows only for a line longer than it.
        if self.buf.len() < self.end + READ_SIZE {
            self.buf.resize(self.end + READ_SIZE, 0);
        }
        let was = self.end;
        let n = loop {
            match self.reader.read(&mut self.buf[was..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.end = was + n;
        if n == 0 {
            self.eof = true;
            if self.decoder.is_none() && self.clean == was && was > 0 && self.buf[was - 1] != b'\n'
            {
                self.buf[was] = b'\n';
                self.end += 1;
                self.clean += 1;
            }
        } else if self.clean == was {
            self.clean = memchr::memchr2(b'"', b'\r', &self.buf[was..self.end])
                .map_or(self.end, |i| was + i);
        }
        Ok(())
    }

    /// The next batch: read here while the lines are plain, then by Arrow's reader.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.decoder.is_none() {
            let (columns, rows) = self.read_plain()?;
            if rows > 0 {
                return RecordBatch::try_new(self.parsed.clone(), columns).map(Some);
            }
            if self.decoder.is_none() {
                return Ok(None);
            }
        }
        self.read_decoded()
    }

    /// Reads plain lines into a batch, up to `batch_rows` of them; at the first line that is
    /// not plain, hands the rest of the file to Arrow's reader.
    fn read_plain(&mut self) -> Result<(Vec<ArrayRef>, usize), ArrowError> {
        let n = self.schema.fields().len();
        // Room for as much text per column as the last batch held, and a little more: a
        // column that outgrows its buffer is copied to a larger one.
        self.sizes.resize(n, self.batch_rows * 8);
        self.parses.resize(n, Parse::Text);
        let mut columns: Vec<Column> = self
            .sizes
            .iter()
            .zip(&self.parses)
            .map(|(&bytes, &parse)| Column::new(parse, self.batch_rows, bytes + bytes / 8))
            .collect();
        let mut rows = 0;
        while rows < self.batch_rows {
            // The complete lines of the clean text.
            let end = match memchr::memrchr(b'\n', &self.buf[self.start..self.clean]) {
                Some(i) => self.start + i + 1,
                None => {
                    if self.clean < self.end {
                        // The next line holds a quote or a carriage return.
                        self.hand_over();
                        break;
                    }
                    if self.eof {
                        break;
                    }
                    self.fill()?;
                    continue;
                }
            };
            let lines = &self.buf[self.start..end];
            let (text, whole) = match std::str::from_utf8(lines) {
                Ok(text) => (text, true),
                Err(e) => {
                    // Up to the line that is not UTF-8.
                    let upto =
                        memchr::memrchr(b'\n', &lines[..e.valid_up_to()]).map_or(0, |i| i + 1);
                    let text = std::str::from_utf8(&lines[..upto]).map_err(|e| {
                        ArrowError::CsvError(format!("text checked twice differs: {e}"))
                    })?;
                    (text, false)
                }
            };
            let mut lines = Lines {
                delimiter: self.delimiter,
                header: &mut self.header,
                columns: &mut columns,
                ends: &mut self.ends,
                rows,
            };
            let split = lines.split(text, self.batch_rows);
            self.start += split.used;
            self.records += split.records as u64;
            rows += split.rows;
            match split.stop {
                Some(Stop::Fields(found)) => {
                    return Err(ArrowError::CsvError(format!(
                        "incorrect number of fields for line {}, expected {n} got {found}",
                        self.records + 1
                    )));
                }
                Some(Stop::Number) => {
                    self.hand_over();
                    break;
                }
                None => {}
            }
            if !whole && split.used == text.len() {
                self.hand_over();
                break;
            }
        }
        if rows == self.batch_rows {
            for (size, column) in self.sizes.iter_mut().zip(&columns) {
                if let Column::Text(bytes, ..) = column {
                    *size = bytes.len();
                }
            }
        }
        let columns = columns
            .into_iter()
            .map(Column::finish)
            .collect::<Result<_, _>>()?;
        Ok((columns, rows))
    }

    /// Arrow's reader takes the file from `start` on.
    fn hand_over(&mut self) {
        let decoder = ReaderBuilder::new(self.schema.clone())
            .with_header(self.header)
            .with_delimiter(self.delimiter)
            .with_batch_size(self.batch_rows)
            .build_decoder();
        self.decoder = Some(decoder);
    }

    /// The next batch from Arrow's reader, its line numbers counted from the file's start.
    fn read_decoded(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let records = self.records;
        let decoded = (|| {
            loop {
                if self.start == self.end && !self.eof {
                    self.fill()?;
                }
                let decoder = self.decoder.as_mut().ok_or_else(|| {
                    ArrowError::CsvError("no reader for the rest of the file".into())
                })?;
                // Empty at the file's end, which tells the reader that its last line ended.
                let used = decoder.decode(&self.buf[self.start..self.end])?;
                self.start += used;
                if used == 0 || decoder.capacity() == 0 {
                    return decoder.flush();
                }
            }
        })();
        decoded.map_err(|e| match e {
            ArrowError::CsvError(s) if records > 0 => {
                ArrowError::CsvError(shift_lines(&s, records))
            }
            e => e,
        })
    }
}

impl<R: Read> Iterator for CsvText<R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// What [`Lines::split`] read.
struct Split {
    /// Bytes of the text used.
    used: usize,
    /// Records read (rows, and the header).
    records: usize,
    /// Rows read.
    rows: usize,
    /// Why it stopped before the end of the text, or of the rows wanted.
    stop: Option<Stop>,
}

/// A line the plain reading does not take.
enum Stop {
    /// It has this many fields, not one per column.
    Fields(usize),
    /// A number in it does not parse (or would not keep its text).
    Number,
}

/// Where the fields of plain lines go.
struct Lines<'a> {
    delimiter: u8,
    /// Whether the header line is still to be passed over.
    header: &'a mut bool,
    columns: &'a mut [Column],
    ends: &'a mut Vec<usize>,
    /// Rows in the columns.
    rows: usize,
}

impl Lines<'_> {
    /// Cuts `text`, whole lines without quotes or carriage returns, into fields appended to
    /// the columns, until they hold `most` rows. Blank lines are passed over, as is the first
    /// non-blank one while `header`. Stops before a line whose fields are not one per column,
    /// or whose number does not parse.
    fn split(&mut self, text: &str, most: usize) -> Split {
        let bytes = text.as_bytes();
        let delimiter = self.delimiter;
        let mut split = Split {
            used: 0,
            records: 0,
            rows: 0,
            stop: None,
        };
        if self.rows >= most {
            return split;
        }
        self.ends.clear();
        let mut block_start = 0;
        for block in bytes.chunks(64) {
            let (mut stops, breaks) = stop_masks(block, delimiter);
            while stops != 0 {
                let bit = stops & stops.wrapping_neg();
                let at = block_start + bit.trailing_zeros() as usize;
                stops ^= bit;
                if breaks & bit == 0 {
                    self.ends.push(at);
                    continue;
                }
                if self.ends.is_empty() && at == split.used {
                    // A blank line.
                    split.used = at + 1;
                    continue;
                }
                self.ends.push(at);
                if std::mem::take(self.header) {
                    split.records += 1;
                } else {
                    if let Err(stop) = self.row(text, split.used) {
                        for column in self.columns.iter_mut() {
                            column.truncate(self.rows);
                        }
                        split.stop = Some(stop);
                        return split;
                    }
                    self.rows += 1;
                    split.records += 1;
                    split.rows += 1;
                }
                self.ends.clear();
                split.used = at + 1;
                if self.rows == most {
                    return split;
                }
            }
            block_start += block.len();
        }
        split
    }

    /// Appends the line that starts at `start` and whose fields end at `ends` to the
    /// columns. A line not taken may leave some of its values there (the caller takes
    /// them back).
    fn row(&mut self, text: &str, start: usize) -> Result<(), Stop> {
        if self.ends.len() != self.columns.len() {
            return Err(Stop::Fields(self.ends.len()));
        }
        let mut from = start;
        for (column, &to) in self.columns.iter_mut().zip(self.ends.iter()) {
            let field = &text[from..to];
            match column {
                Column::Text(bytes, ends, nulls) => {
                    if field.is_empty() {
                        nulls.append_null();
                    } else {
                        let at = bytes.len();
                        // A short value is copied as 16 bytes (a copy of known length, without
                        // a call), then cut to its length.
                        match text.as_bytes().get(from..from + 16) {
                            Some(sixteen) if field.len() <= 16 => {
                                bytes.extend_from_slice(sixteen);
                                bytes.truncate(at + field.len());
                            }
                            _ => bytes.extend_from_slice(field.as_bytes()),
                        }
                        nulls.append_non_null();
                    }
                    ends.push(i32::try_from(bytes.len()).map_err(|_| Stop::Number)?);
                }
                Column::Int64(numbers) => numbers.push(field, parse_int)?,
                Column::Float64(numbers) => numbers.push(field, parse_float)?,
            }
            from = to + 1;
        }
        Ok(())
    }
}

/// Whether a number would not keep `field` as written (the import's check of an inferred
/// number column: [`crate::import::changed_as`]).
fn keeps_no_text(field: &str) -> bool {
    crate::import::changed_as(field, &DataType::Int64).is_some()
}

/// The positions of `delimiter` and of line breaks in `block` (at most 64 bytes) as bits,
/// and those of the line breaks alone (fields are short: a vector search started again
/// after each one, as `memchr` does, costs more than it saves).
fn stop_masks(block: &[u8], delimiter: u8) -> (u64, u64) {
    let (delimiters, breaks) = (every_byte(delimiter), every_byte(b'\n'));
    let (mut stops, mut lines) = (0u64, 0u64);
    for (k, word) in words(block, if delimiter == 0 { 1 } else { 0 })
        .into_iter()
        .enumerate()
    {
        let at_break = bytes_equal(word, breaks);
        stops |= bits_of(bytes_equal(word, delimiters) | at_break) << (8 * k);
        lines |= bits_of(at_break) << (8 * k);
    }
    (stops, lines)
}

/// The positions of `byte` in `block` (at most 64 bytes) as bits.
pub(crate) fn byte_mask(block: &[u8], byte: u8) -> u64 {
    let every = every_byte(byte);
    words(block, byte.wrapping_add(1))
        .into_iter()
        .enumerate()
        .fold(0, |mask, (k, word)| {
            mask | bits_of(bytes_equal(word, every)) << (8 * k)
        })
}

/// `block` (at most 64 bytes, then `pad`) as eight words, to be compared eight bytes at a
/// time (a loop of per-byte compares, which the compiler leaves scalar, took twice the
/// instructions).
fn words(block: &[u8], pad: u8) -> [u64; 8] {
    let mut padded = [pad; 64];
    let block = match <&[u8; 64]>::try_from(block) {
        Ok(full) => full,
        Err(_) => {
            padded[..block.len()].copy_from_slice(block);
            &padded
        }
    };
    let mut words = [0u64; 8];
    for (word, part) in words.iter_mut().zip(block.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(part);
        *word = u64::from_le_bytes(bytes);
    }
    words
}

/// `byte` in each byte of a word.
fn every_byte(byte: u8) -> u64 {
    u64::from(byte) * 0x0101_0101_0101_0101
}

/// The high bit of each byte of `word` that equals the same byte of `other`, exactly (no
/// borrow crosses from one byte to the next).
fn bytes_equal(word: u64, other: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ other;
    !(((x & LOW) + LOW) | x | LOW)
}

/// The high bits of the eight bytes of `high` (nothing else set) as the low eight bits.
fn bits_of(high: u64) -> u64 {
    ((high >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// `field` as an int64, as [`Int64Type::parse`] reads it: an optional sign and up to 18
/// digits are read here, anything else by it.
fn parse_int(field: &str) -> Option<i64> {
    let b = field.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Int64Type::parse(field);
    }
    let mut n = 0i64;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return Int64Type::parse(field);
        }
        n = n * 10 + i64::from(d);
    }
    Some(if negative { -n } else { n })
}

/// `field` as a float64, as [`Float64Type::parse`] reads it. Digits with at most one point
/// among them (one digit at least on either side of it), at most 15 digits in all and an
/// optional `-` are read here: such a decimal is its digits as a whole number (exact in a
/// float64, below 2^53) divided by a power of ten (exact too, up to 10^22), and the division
/// of two exact values rounds correctly, so it is the float nearest the decimal, as a full
/// parse finds it. Anything else is read by it.
fn parse_float(field: &str) -> Option<f64> {
    const TENS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let b = field.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let mut n = 0u64;
    let mut count = 0usize;
    let mut point = None;
    for (i, &d) in digits.iter().enumerate() {
        let v = d.wrapping_sub(b'0');
        if v <= 9 {
            n = n * 10 + u64::from(v);
            count += 1;
            if count > 15 {
                return Float64Type::parse(field);
            }
        } else if d == b'.' && point.is_none() && i > 0 {
            point = Some(i);
        } else {
            return Float64Type::parse(field);
        }
    }
    let decimals = match point {
        Some(p) if p + 1 == digits.len() => return Float64Type::parse(field),
        Some(p) => digits.len() - p - 1,
        None if count == 0 => return Float64Type::parse(field),
        None => 0,
    };
    let v = n as f64 / TENS[decimals];
    Some(if negative { -v } else { v })
}

/// Arrow's patterns for the type of a CSV value, in the order of [`KINDS`]
/// (`arrow_csv::reader::infer_schema`'s, which it keeps private).
static PATTERNS: LazyLock<Option<RegexSet>> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)^(true)$|^(false)$(?-i)",
        r"^[+-]?(\d+)$",
        r"^[+-]?((\d*\.\d+|\d+\.\d*)([eE][-+]?\d+)?|\d+([eE][-+]?\d+))$",
        r"^\d{4}-\d\d-\d\d$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[^\d\.].*)?$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{1,3}(?:[^\d].*)?$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{1,6}(?:[^\d].*)?$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{1,9}(?:[^\d].*)?$",
    ])
    .ok()
});

/// The bit of each kind of value (as Arrow's inference packs them).
const BOOLEAN: u16 = 1;
const INTEGER: u16 = 1 << 1;
const DECIMAL: u16 = 1 << 2;
const TEXT: u16 = 1 << 8;

/// The kind of a CSV value as Arrow's inference tells it (a bit of [`column_type`]'s set):
/// a whole number, a decimal without an exponent, and a word of ASCII letters (most values)
/// without its patterns, anything else by them.
fn kind_of(value: &str) -> u16 {
    let b = value.as_bytes();
    if b.first() == Some(&b'"') {
        return TEXT;
    }
    let digits = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        return if value.len() >= 19 && value.parse::<i64>().is_err() {
            TEXT
        } else {
            INTEGER
        };
    }
    let points = digits.iter().filter(|&&c| c == b'.').count();
    if points == 1 && digits.len() > 1 && digits.iter().all(|&c| c == b'.' || c.is_ascii_digit()) {
        return DECIMAL;
    }
    if !b.is_empty() && b.iter().all(u8::is_ascii_alphabetic) {
        return if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
            BOOLEAN
        } else if matches!(value, "NaN" | "nan" | "inf") {
            DECIMAL
        } else {
            TEXT
        };
    }
    let first = PATTERNS
        .as_ref()
        .and_then(|p| p.matches(value).into_iter().next());
    match first {
        Some(1) if value.len() >= 19 && value.parse::<i64>().is_err() => TEXT,
        Some(m) => 1 << m,
        None if matches!(value, "NaN" | "nan" | "inf" | "-inf") => DECIMAL,
        None => TEXT,
    }
}

/// The type of a column whose values' kinds are `kinds`, as Arrow's inference gives it.
fn column_type(kinds: u16) -> DataType {
    use crate::arrow::datatypes::TimeUnit;
    match kinds {
        0 => DataType::Null,
        1 => DataType::Boolean,
        2 => DataType::Int64,
        4 | 6 => DataType::Float64,
        b if b != 0 && (b & !0b1111_1000) == 0 => match b.leading_zeros() {
            8 => DataType::Timestamp(TimeUnit::Nanosecond, None),
            9 => DataType::Timestamp(TimeUnit::Microsecond, None),
            10 => DataType::Timestamp(TimeUnit::Millisecond, None),
            11 => DataType::Timestamp(TimeUnit::Second, None),
            _ => DataType::Date32,
        },
        _ => DataType::Utf8,
    }
}

/// The columns of a CSV file (with a header line) and their types, inferred from its first
/// `most` records, with the records read: what `arrow_csv`'s `Format::infer_schema` gives,
/// reading the file with the same reader (the `csv` crate's) and the same patterns, with the
/// common values told apart without them (matching each value against eight patterns was
/// most of an inference's time). A test holds the two to the same types on random files.
pub(crate) fn infer_schema<R: Read>(
    reader: R,
    delimiter: u8,
    most: usize,
) -> Result<(Schema, usize), ArrowError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(delimiter)
        .escape(None)
        .from_reader(reader);
    let names: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(str::to_string)
        .collect();
    let mut kinds = vec![0u16; names.len()];
    let mut record = csv::StringRecord::new();
    let mut records = 0;
    while records < most {
        if !reader.read_record(&mut record).map_err(csv_error)? {
            break;
        }
        records += 1;
        for (i, kind) in kinds.iter_mut().enumerate() {
            if let Some(value) = record.get(i).filter(|v| !v.is_empty()) {
                *kind |= kind_of(value);
            }
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(&kinds)
        .map(|(name, &k)| Field::new(name, column_type(k), true))
        .collect();
    Ok((Schema::new(fields), records))
}

/// A `csv` crate error as `arrow_csv` words it.
fn csv_error(error: csv::Error) -> ArrowError {
    match error.kind() {
        csv::ErrorKind::Io(error) => ArrowError::CsvError(error.to_string()),
        csv::ErrorKind::Utf8 { pos, err } => ArrowError::CsvError(format!(
            "Encountered UTF-8 error while reading CSV file: {err}{}",
            pos.as_ref()
                .map(|pos| format!(" at line {}", pos.line()))
                .unwrap_or_default(),
        )),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => ArrowError::CsvError(format!(
            "Encountered unequal lengths between records on CSV file. Expected {expected_len} records, found {len} records{}",
            pos.as_ref()
                .map(|pos| format!(" at line {}", pos.line()))
                .unwrap_or_default(),
        )),
        _ => ArrowError::CsvError("Error reading CSV file".to_string()),
    }
}

/// Arrow's message about a line, with the line counted `records` further on (its reader
/// started that many records into the file).
fn shift_lines(message: &str, records: u64) -> String {
    const AT: &str = "for line ";
    let Some(i) = message.find(AT) else {
        return message.to_string();
    };
    let from = i + AT.len();
    let digits = message[from..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(message.len(), |d| from + d);
    match message[from..digits].parse::<u64>() {
        Ok(line) => format!(
            "{}{}{}",
            &message[..from],
            line + records,
            &message[digits..]
        ),
        Err(_) => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::compute::concat_batches;
    use crate::arrow::datatypes::{DataType, Field, Schema};
    use proptest::prelude::*;

    fn schema(n: usize) -> SchemaRef {
        Arc::new(Schema::new(
            (0..n)
                .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ))
    }

    /// Rows (or the error) of `text` read by `batches`.
    fn gather(
        schema: &SchemaRef,
        batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
    ) -> Result<RecordBatch, String> {
        let batches = batches
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        concat_batches(schema, &batches).map_err(|e| e.to_string())
    }

    fn ours(text: &[u8], n: usize, delimiter: u8, batch: usize) -> Result<RecordBatch, String> {
        let s = schema(n);
        gather(&s, CsvText::new(text, s.clone(), delimiter, batch))
    }

    fn arrows(text: &[u8], n: usize, delimiter: u8, batch: usize) -> Result<RecordBatch, String> {
        let s = schema(n);
        let reader = ReaderBuilder::new(s.clone())
            .with_header(true)
            .with_delimiter(delimiter)
            .with_batch_size(batch)
            .build(text)
            .map_err(|e| e.to_string())?;
        gather(&s, reader)
    }

    #[test]
    fn plain_lines_are_read_as_arrow_reads_them() {
        let text = b"a,b,c\n1,x,\n\n2,,z\n3,y,w";
        let got = ours(text, 3, b',', 2).expect("read");
        assert_eq!(got, arrows(text, 3, b',', 2).expect("read"));
        assert_eq!(got.num_rows(), 3);
        assert!(got.column(1).is_null(1));
        assert!(got.column(2).is_null(0));
    }

    #[test]
    fn a_quote_part_way_hands_the_rest_to_arrow() {
        let text = b"a,b\n1,x\n2,\"y,\n z\"\n3,w\r\n4,v\n";
        let got = ours(text, 2, b',', 64).expect("read");
        assert_eq!(got, arrows(text, 2, b',', 64).expect("read"));
        assert_eq!(
            got.column(1)
                .as_any()
                .downcast_ref::<crate::arrow::array::StringArray>()
                .expect("text")
                .value(1),
            "y,\n z"
        );
        assert_eq!(got.num_rows(), 4);
    }

    #[test]
    fn a_line_of_the_wrong_length_is_numbered_from_the_files_start() {
        for text in [
            &b"a,b\n1,x\n\n2,y\n3\n4,z\n"[..],
            b"a,b\n1,x\n2,y\n3,z,\n",
            b"a,b\n1,x\n2,\"y\"\n3\n",
        ] {
            let want = arrows(text, 2, b',', 64).expect_err("refused");
            assert!(want.contains("line 4"), "{want}");
            assert_eq!(ours(text, 2, b',', 64).expect_err("refused"), want);
            assert_eq!(ours(text, 2, b',', 1).expect_err("refused"), want);
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_numbered_from_the_files_start() {
        let text = b"a,b\n1,x\n2,y\n3,\xff\n4,z\n";
        let want = arrows(text, 2, b',', 64).expect_err("refused");
        assert!(want.contains("line 4 and field 2"), "{want}");
        assert_eq!(ours(text, 2, b',', 64).expect_err("refused"), want);
    }

    #[test]
    fn the_header_may_follow_blank_lines_and_a_byte_order_mark() {
        let text = b"\n\n\xEF\xBB\xBFa,b\n1,x\n";
        assert_eq!(ours(text, 2, b',', 8), arrows(text, 2, b',', 8));
        assert_eq!(ours(b"", 2, b',', 8), arrows(b"", 2, b',', 8));
        assert_eq!(ours(b"a,b", 2, b',', 8), arrows(b"a,b", 2, b',', 8));
    }

    #[test]
    fn a_line_longer_than_a_read_is_read_whole() {
        let long = "v".repeat(3 * READ_SIZE + 7);
        let text = format!("k,v\n1,{long}\n2,x\n3,{long}");
        let got = ours(text.as_bytes(), 2, b',', 2).expect("read");
        assert_eq!(got, arrows(text.as_bytes(), 2, b',', 2).expect("read"));
        assert_eq!(got.num_rows(), 3);
    }

    #[test]
    fn long_files_cross_many_reads() {
        let mut text = b"k;v\n".to_vec();
        for i in 0..300_000 {
            text.extend_from_slice(format!("{i};value {i}\n").as_bytes());
        }
        let got = ours(&text, 2, b';', 65_536).expect("read");
        assert_eq!(got.num_rows(), 300_000);
        assert_eq!(got, arrows(&text, 2, b';', 65_536).expect("read"));
    }

    fn arrows_types(text: &[u8], delimiter: u8) -> Result<(Schema, usize), String> {
        crate::arrow::csv::reader::Format::default()
            .with_header(true)
            .with_delimiter(delimiter)
            .infer_schema(text, Some(50))
            .map_err(|e| e.to_string())
    }

    fn our_types(text: &[u8], delimiter: u8) -> Result<(Schema, usize), String> {
        infer_schema(text, delimiter, 50).map_err(|e| e.to_string())
    }

    #[test]
    fn types_are_inferred_as_arrow_infers_them() {
        for values in [
            &["1", "-2", "+3"][..],
            &["1", "2.5"],
            &["5.", ".5", "-.5", "+5.0"],
            &["1e3", "2"],
            &["true", "FALSE", "True"],
            &["true", "1"],
            &["NaN", "nan", "inf", "-inf", "1"],
            &["Inf"],
            &["2024-01-02"],
            &["2024-01-02 03:04:05", "2024-01-02T03:04:05.123"],
            &["2024-01-02T03:04:05.123456789Z"],
            &["9223372036854775807", "9223372036854775808"],
            &["-9223372036854775808"],
            &["00123"],
            &["\u{0661}\u{0662}"],
            &["e", "E", "T", "."],
            &["x", ""],
            &["", ""],
        ] {
            let mut text = String::from("a,b\n");
            for v in values {
                text.push_str(&format!("{v},z\n"));
            }
            let text = text.as_bytes();
            assert_eq!(
                our_types(text, b','),
                arrows_types(text, b','),
                "{values:?}"
            );
        }
        for text in [
            &b""[..],
            b"a,b",
            b"a,b\n1,2,3\n",
            b"a,b\n1,\xff\n",
            b"a;b\n1;2\n",
        ] {
            assert_eq!(our_types(text, b','), arrows_types(text, b','), "{text:?}");
        }
    }

    #[test]
    fn numbers_parse_to_the_same_bits_as_arrows_parser() {
        for v in [
            "0",
            "-0",
            "-0.0",
            "0.0",
            "7",
            "-7",
            "12.5",
            "0.1",
            "0.3",
            "123456789012345",
            "1234567890.12345",
            "999999999999999999",
            "-999999999999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "+5",
            "5.",
            ".5",
            "-.5",
            "1e3",
            "1.5e3",
            "inf",
            "NaN",
            "1..2",
            "-",
            "",
            "12a",
            "00012",
            "0.000000000000001",
            "8.589973e9",
            "4503599627370497.5",
        ] {
            assert_eq!(parse_int(v), Int64Type::parse(v), "{v}");
            assert_eq!(
                parse_float(v).map(f64::to_bits),
                Float64Type::parse(v).map(f64::to_bits),
                "{v}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn decimals_parse_to_the_same_bits_as_arrows_parser(
            v in "-?[0-9]{0,19}(\\.[0-9]{0,19})?",
        ) {
            prop_assert_eq!(parse_int(&v), Int64Type::parse(&v));
            prop_assert_eq!(
                parse_float(&v).map(f64::to_bits),
                Float64Type::parse(&v).map(f64::to_bits)
            );
        }

        /// Random values of many shapes: the same types as Arrow's inference.
        #[test]
        fn random_values_get_arrows_types(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    "[-+]?[0-9]{0,3}(\\.[0-9]{0,2})?([eE][-+]?[0-9])?|true|False|NaN|inf|-inf|[a-zT]{1,3}|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?)?|\"q\"|[0-9]{19,20}",
                    2,
                ),
                0..12,
            ),
        ) {
            let mut text = String::from("a,b\n");
            for row in &rows {
                text.push_str(&row.join(","));
                text.push('\n');
            }
            prop_assert_eq!(
                our_types(text.as_bytes(), b','),
                arrows_types(text.as_bytes(), b',')
            );
        }

        #[test]
        fn masks_mark_every_delimiter_and_line_break(
            block in proptest::collection::vec(
                prop_oneof![Just(b','), Just(b'\n'), Just(0u8), Just(0x80u8), Just(0xffu8),
                    Just(b';'), Just(b'a')],
                0..=64,
            ),
            delimiter in prop_oneof![Just(b','), Just(b';'), Just(0u8), Just(0x80u8)],
        ) {
            let (mut stops, mut lines) = (0u64, 0u64);
            for (i, &b) in block.iter().enumerate() {
                stops |= u64::from(b == delimiter || b == b'\n') << i;
                lines |= u64::from(b == b'\n') << i;
            }
            prop_assert_eq!(stop_masks(&block, delimiter), (stops, lines));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Random text of a few columns (quotes, carriage returns, blank lines, bytes that
        /// are not UTF-8, lines of the wrong length): the same rows, or both refused.
        #[test]
        fn reads_as_arrows_reader_does(
            parts in proptest::collection::vec(
                prop_oneof![
                    8 => Just(&b"x"[..]), 4 => Just(&b","[..]), 4 => Just(&b"\n"[..]),
                    2 => Just(&b"12"[..]), 1 => Just(&b"\xc3\xa9"[..]), 1 => Just(&b" "[..]),
                    1 => Just(&b"\""[..]), 1 => Just(&b"\r"[..]), 1 => Just(&b"\r\n"[..]),
                    1 => Just(&b"\xff"[..]), 1 => Just(&b";"[..]),
                ],
                0..200,
            ),
            n in 1usize..4,
            batch in 1usize..6,
            semicolon in any::<bool>(),
        ) {
            let delimiter = if semicolon { b';' } else { b',' };
            let mut text = (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>()
                .join(if semicolon { ";" } else { "," }).into_bytes();
            text.push(b'\n');
            text.extend(parts.concat());
            let want = arrows(&text, n, delimiter, batch);
            let got = ours(&text, n, delimiter, batch);
            match (&got, &want) {
                (Ok(g), Ok(w)) => prop_assert_eq!(g, w),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "ours {:?}, arrow's {:?}", got, want),
            }
        }

        /// Number columns parsed as the lines are cut: the same values as Arrow's text
        /// converted afterwards (as the import converts it), or both refused.
        #[test]
        fn parses_numbers_as_the_import_converts_text(
            rows in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        prop_oneof![
                            6 => Just("7"), 4 => Just("12"), 3 => Just(""), 2 => Just("0"),
                            2 => Just("-3.5"), 2 => Just(".5"), 1 => Just("07"),
                            1 => Just("1e3"), 1 => Just("x"), 1 => Just("\"q\""),
                        ],
                        3,
                    ),
                    // Now and then a line of the wrong length.
                    proptest::bool::weighted(0.03),
                ),
                0..40,
            ),
            kinds in proptest::collection::vec(0u8..5, 3),
            batch in 1usize..6,
        ) {
            let parses: Vec<Parse> = kinds.iter().map(|k| match k {
                0 => Parse::Text,
                1 => Parse::Int64 { exact: false },
                2 => Parse::Int64 { exact: true },
                3 => Parse::Float64 { exact: false },
                _ => Parse::Float64 { exact: true },
            }).collect();
            let mut text = String::from("a,b,c\n");
            for (row, short) in &rows {
                text.push_str(&row[..if *short { 2 } else { 3 }].join(","));
                text.push('\n');
            }
            let s = schema(3);
            let reader = ReaderBuilder::new(s.clone())
                .with_header(true)
                .with_batch_size(batch)
                .build(text.as_bytes())
                .map_err(|e| e.to_string());
            let want = reader.and_then(|r| converted(r, &parses));
            let got = converted(
                CsvText::new(text.as_bytes(), s.clone(), b',', batch).parsing(parses.clone()),
                &parses,
            );
            match (&got, &want) {
                (Ok(g), Ok(w)) => prop_assert_eq!(g, w),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "ours {:?}, arrow's {:?}", got, want),
            }
        }
    }

    /// The columns of `batches`, each text column that `parses` makes a number converted as
    /// the import converts it (a parse or a leading zero where `exact` refused), concatenated.
    fn converted(
        batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
        parses: &[Parse],
    ) -> Result<Vec<ArrayRef>, String> {
        let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); parses.len()];
        for batch in batches {
            let batch = batch.map_err(|e| e.to_string())?;
            for (i, parse) in parses.iter().enumerate() {
                let col = batch.column(i).clone();
                let text = col
                    .as_any()
                    .downcast_ref::<crate::arrow::array::StringArray>();
                let col: ArrayRef = match (parse, text) {
                    (Parse::Text, _) | (_, None) => col,
                    (Parse::Int64 { exact }, Some(text)) => {
                        let mut out = Vec::new();
                        for v in text.iter() {
                            out.push(match v {
                                None => None,
                                Some(v) if *exact && keeps_no_text(v) => return Err("zero".into()),
                                Some(v) => Some(Int64Type::parse(v).ok_or("not an int")?),
                            });
                        }
                        Arc::new(PrimitiveArray::<Int64Type>::from(out))
                    }
                    (Parse::Float64 { exact }, Some(text)) => {
                        let mut out = Vec::new();
                        for v in text.iter() {
                            out.push(match v {
                                None => None,
                                Some(v) if *exact && keeps_no_text(v) => return Err("zero".into()),
                                Some(v) => Some(Float64Type::parse(v).ok_or("not a float")?),
                            });
                        }
                        Arc::new(PrimitiveArray::<Float64Type>::from(out))
                    }
                };
                columns[i].push(col);
            }
        }
        columns
            .iter()
            .map(|parts| {
                let parts: Vec<&dyn crate::arrow::array::Array> =
                    parts.iter().map(|a| a.as_ref()).collect();
                if parts.is_empty() {
                    return Ok(
                        Arc::new(crate::arrow::array::StringArray::from(Vec::<String>::new()))
                            as ArrayRef,
                    );
                }
                arrow_select::concat::concat(&parts).map_err(|e| e.to_string())
            })
            .collect()
    }
}
