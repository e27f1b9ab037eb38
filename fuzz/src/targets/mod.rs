//! The fuzz targets, one per hostile-input surface.

pub mod gojs_imports;
pub mod guest_path;
pub mod manifest;
pub mod module;
pub mod parsers;
pub mod wasi_imports;
