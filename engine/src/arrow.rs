//! The parts of Arrow the engine uses, under the module names of the `arrow` umbrella crate
//! (which would also build kernels Strata never calls).

pub mod array {
    pub use arrow_array::cast::AsArray;
    pub use arrow_array::*;
    pub use arrow_ord::ord::{make_comparator, DynComparator};
}

pub mod datatypes {
    pub use arrow_array::types::*;
    pub use arrow_schema::*;
}

pub mod compute {
    pub use arrow_cast::cast::{can_cast_types, cast_with_options, CastOptions};
    pub use arrow_schema::SortOptions;
    pub use arrow_select::concat::concat_batches;
    pub use arrow_select::filter::filter_record_batch;
    pub use arrow_select::interleave::interleave_record_batch;
    pub use arrow_select::take::take_record_batch;
}

pub mod error {
    pub use arrow_schema::ArrowError;
}

pub mod util {
    pub mod display {
        pub use arrow_cast::display::*;
    }
}

pub use arrow_csv as csv;
pub use arrow_ipc as ipc;
pub use arrow_json as json;
