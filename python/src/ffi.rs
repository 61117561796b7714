//! The Arrow PyCapsule interface: Arrow data in and out of Python without a copy.
//!
//! Exporting needs no unsafe code: a capsule owns an `FFI_ArrowArrayStream` (or an
//! `FFI_ArrowSchema`, `FFI_ArrowArray`), whose `Drop` releases it unless the consumer moved it
//! out first, as the protocol asks. Importing reads a struct through the pointer a producer's
//! capsule holds; those two reads are the only unsafe code of the crate.
//! See <https://arrow.apache.org/docs/format/CDataInterface/PyCapsuleInterface.html>.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{Array, RecordBatch, RecordBatchReader, StructArray};
use arrow_schema::{ArrowError, Schema};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

pub const STREAM: &CStr = c"arrow_array_stream";
pub const SCHEMA: &CStr = c"arrow_schema";
pub const ARRAY: &CStr = c"arrow_array";

fn arrow_err(e: ArrowError) -> PyErr {
    PyValueError::new_err(format!("Arrow data could not be exchanged: {e}"))
}

/// A stream capsule that hands `reader` to its consumer.
pub fn export_stream<'py>(
    py: Python<'py>,
    reader: Box<dyn RecordBatchReader + Send>,
) -> PyResult<Bound<'py, PyCapsule>> {
    PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(reader), STREAM)
}

/// A schema capsule.
pub fn export_schema<'py>(py: Python<'py>, schema: &Schema) -> PyResult<Bound<'py, PyCapsule>> {
    let ffi = FFI_ArrowSchema::try_from(schema).map_err(arrow_err)?;
    PyCapsule::new_with_value(py, ffi, SCHEMA)
}

/// The schema and array capsules of one batch (a struct array of its columns).
pub fn export_batch<'py>(
    py: Python<'py>,
    batch: RecordBatch,
) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
    let data = StructArray::from(batch).into_data();
    let (array, schema) = arrow_array::ffi::to_ffi(&data).map_err(arrow_err)?;
    Ok((
        PyCapsule::new_with_value(py, schema, SCHEMA)?,
        PyCapsule::new_with_value(py, array, ARRAY)?,
    ))
}

/// Takes the stream out of a producer's `arrow_array_stream` capsule.
pub fn import_stream(capsule: &Bound<'_, PyCapsule>) -> PyResult<RecordBatchStreamReader> {
    let ptr = capsule.pointer_checked(Some(STREAM))?;
    // SAFETY: the capsule's name is checked above, so by the PyCapsule interface its pointer
    // is a valid, aligned, initialised `ArrowArrayStream` that the consumer may move out.
    // `from_raw` moves it and leaves a released (empty) struct behind, so the producer's
    // capsule destructor, which releases only unreleased streams, does nothing more.
    let stream = unsafe { FFI_ArrowArrayStream::from_raw(ptr.as_ptr().cast()) };
    RecordBatchStreamReader::try_new(stream).map_err(arrow_err)
}

/// The batch held by a producer's `arrow_schema` and `arrow_array` capsules (a struct array).
pub fn import_batch(
    schema: &Bound<'_, PyCapsule>,
    array: &Bound<'_, PyCapsule>,
) -> PyResult<RecordBatch> {
    let schema_ptr = schema.pointer_checked(Some(SCHEMA))?;
    let array_ptr = array.pointer_checked(Some(ARRAY))?;
    // SAFETY: the names are checked above, so by the PyCapsule interface the pointers are
    // valid, aligned, initialised `ArrowSchema` and `ArrowArray` structs. The schema is only
    // borrowed (it stays the producer's); the array is moved out and a released one left
    // behind, as the interface says a consumer does.
    let data = unsafe {
        let ffi_schema: &FFI_ArrowSchema = &*schema_ptr.as_ptr().cast::<FFI_ArrowSchema>();
        let ffi_array = std::ptr::replace(
            array_ptr.as_ptr().cast::<FFI_ArrowArray>(),
            FFI_ArrowArray::empty(),
        );
        arrow_array::ffi::from_ffi(ffi_array, ffi_schema)
    }
    .map_err(arrow_err)?;
    let array = StructArray::from(data);
    let schema = Arc::new(Schema::new(array.fields().clone()));
    let len = array.len();
    let (_, columns, nulls) = array.into_parts();
    if nulls.is_some_and(|n| n.null_count() > 0) {
        return Err(PyValueError::new_err(
            "the Arrow array has null rows; a table's rows cannot be null",
        ));
    }
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(len)),
    )
    .map_err(arrow_err)
}
