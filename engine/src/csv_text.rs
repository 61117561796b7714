//! A CSV file's text as batches of text columns, read as Arrow's CSV reader reads it.
//!
//! Most CSV files hold no quote at all, and end their lines with `\n` alone. Such lines are
//! cut into fields here, by one vector search for the delimiter and the line break across
//! the text, and each field is copied once, straight into its column. Arrow's reader
//! (`csv_core`'s state machine, byte by byte) first copies every field into a record buffer,
//! then again into the columns: on a 10M-row file that is about a sixth of an import's
//! work.
//!
//! From the first line that holds anything else (a quote, a carriage return, text that is
//! not UTF-8, the wrong number of fields) to the end of the file, the text goes to Arrow's
//! reader, unchanged: it reads quoting, every line ending, and says what is wrong with a line
//! (its line numbers counted from the file's start, as if it had read all of it). Blank
//! lines are passed over, and an empty field is a null, as Arrow's reader has them; the
//! tests compare the two on random text.

use std::io::{ErrorKind, Read};

use crate::arrow::array::builder::StringBuilder;
use crate::arrow::array::{ArrayRef, RecordBatch};
use crate::arrow::csv::reader::Decoder;
use crate::arrow::csv::ReaderBuilder;
use crate::arrow::datatypes::SchemaRef;
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
}

impl<R: Read> CsvText<R> {
    pub(crate) fn new(reader: R, schema: SchemaRef, delimiter: u8, batch_rows: usize) -> Self {
        CsvText {
            reader,
            schema,
            delimiter,
            batch_rows: batch_rows.max(1),
            buf: Vec::new(),
            start: 0,
            clean: 0,
            eof: false,
            header: true,
            records: 0,
            decoder: None,
            ends: Vec::new(),
            sizes: Vec::new(),
        }
    }

    /// Reads more of the file into `buf` (keeping `buf[start..]`), and extends the clean
    /// part over it. At the file's end, a last line without a line break gets one, when it
    /// is clean (Arrow's reader takes it as a line all the same).
    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            // (Once Arrow's reader reads the text, `clean` no longer matters.)
            self.clean = self.clean.saturating_sub(self.start);
            self.start = 0;
        }
        let was = self.buf.len();
        self.buf.resize(was + READ_SIZE, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[was..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(was);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(was + n);
        if n == 0 {
            self.eof = true;
            if self.decoder.is_none()
                && self.clean == was
                && self.buf.last().is_some_and(|&b| b != b'\n')
            {
                self.buf.push(b'\n');
                self.clean += 1;
            }
        } else if self.clean == was {
            self.clean =
                memchr::memchr2(b'"', b'\r', &self.buf[was..]).map_or(self.buf.len(), |i| was + i);
        }
        Ok(())
    }

    /// The next batch: read here while the lines are plain, then by Arrow's reader.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.decoder.is_none() {
            let (columns, rows) = self.read_plain()?;
            if rows > 0 {
                return RecordBatch::try_new(self.schema.clone(), columns).map(Some);
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
        let mut columns: Vec<StringBuilder> = self
            .sizes
            .iter()
            .map(|&bytes| StringBuilder::with_capacity(self.batch_rows, bytes + bytes / 8))
            .collect();
        let mut rows = 0;
        while rows < self.batch_rows {
            // The complete lines of the clean text.
            let end = match memchr::memrchr(b'\n', &self.buf[self.start..self.clean]) {
                Some(i) => self.start + i + 1,
                None => {
                    if self.clean < self.buf.len() {
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
            let (used, added, wrong) = split_lines(
                text,
                self.delimiter,
                &mut self.header,
                &mut columns,
                &mut self.ends,
                self.batch_rows - rows,
            );
            self.start += used;
            self.records += added as u64;
            rows += added;
            if let Some(found) = wrong {
                return Err(ArrowError::CsvError(format!(
                    "incorrect number of fields for line {}, expected {n} got {found}",
                    self.records + 1
                )));
            }
            if !whole && used == text.len() {
                self.hand_over();
                break;
            }
        }
        if rows == self.batch_rows {
            for (size, column) in self.sizes.iter_mut().zip(&columns) {
                *size = column.values_slice().len();
            }
        }
        let columns = columns
            .iter_mut()
            .map(|c| std::sync::Arc::new(c.finish()) as ArrayRef)
            .collect();
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
                if self.start == self.buf.len() && !self.eof {
                    self.fill()?;
                }
                let decoder = self.decoder.as_mut().ok_or_else(|| {
                    ArrowError::CsvError("no reader for the rest of the file".into())
                })?;
                // Empty at the file's end, which tells the reader that its last line ended.
                let used = decoder.decode(&self.buf[self.start..])?;
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

/// Cuts `text`, whole lines without quotes or carriage returns, into fields appended to
/// `columns`, up to `most` rows. Blank lines are passed over, as is the first non-blank one
/// while `header`. Stops before a line whose fields are not one per column. Returns the
/// bytes used, the records read (rows, and the header), and the number of fields of the
/// line it stopped at, if it did.
fn split_lines(
    text: &str,
    delimiter: u8,
    header: &mut bool,
    columns: &mut [StringBuilder],
    ends: &mut Vec<usize>,
    most: usize,
) -> (usize, usize, Option<usize>) {
    let n = columns.len();
    let bytes = text.as_bytes();
    let mut line_start = 0;
    let mut records = 0;
    let mut rows = 0;
    ends.clear();
    let mut block_start = 0;
    for block in bytes.chunks(64) {
        let mut stops = stop_mask(block, delimiter);
        while stops != 0 {
            let at = block_start + stops.trailing_zeros() as usize;
            stops &= stops - 1;
            if bytes[at] == delimiter {
                ends.push(at);
                continue;
            }
            if ends.is_empty() && at == line_start {
                // A blank line.
                line_start = at + 1;
                continue;
            }
            ends.push(at);
            if std::mem::take(header) {
                records += 1;
            } else {
                if ends.len() != n {
                    return (line_start, records, Some(ends.len()));
                }
                let mut from = line_start;
                for (column, &to) in columns.iter_mut().zip(ends.iter()) {
                    if to == from {
                        column.append_null();
                    } else {
                        column.append_value(&text[from..to]);
                    }
                    from = to + 1;
                }
                records += 1;
                rows += 1;
            }
            ends.clear();
            line_start = at + 1;
            if rows == most {
                return (line_start, records, None);
            }
        }
        block_start += block.len();
    }
    (line_start, records, None)
}

/// The positions of `delimiter` and of line breaks in `block` (at most 64 bytes) as bits, in
/// a loop the compiler vectorizes. (Fields are short: a vector search started again after
/// each one, as `memchr` does, costs more than it saves.)
fn stop_mask(block: &[u8], delimiter: u8) -> u64 {
    let mut mask = 0u64;
    let parts = block.chunks_exact(16);
    let rest = parts.remainder();
    for (k, part) in parts.enumerate() {
        let mut bits = 0u16;
        for (i, &b) in part.iter().enumerate() {
            bits |= u16::from((b == delimiter) | (b == b'\n')) << i;
        }
        mask |= u64::from(bits) << (16 * k);
    }
    let done = block.len() - rest.len();
    for (i, &b) in rest.iter().enumerate() {
        mask |= u64::from((b == delimiter) | (b == b'\n')) << (done + i);
    }
    mask
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
    use std::sync::Arc;

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
    fn long_files_cross_many_reads() {
        let mut text = b"k;v\n".to_vec();
        for i in 0..300_000 {
            text.extend_from_slice(format!("{i};value {i}\n").as_bytes());
        }
        let got = ours(&text, 2, b';', 65_536).expect("read");
        assert_eq!(got.num_rows(), 300_000);
        assert_eq!(got, arrows(&text, 2, b';', 65_536).expect("read"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
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
    }
}
