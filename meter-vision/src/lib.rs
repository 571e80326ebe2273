//! Image acquisition, alignment, cropping and segmentation of meter frames
//! into digit images.
//!
//! - [`source`]: frames from the ESP32-CAM over HTTP ([`HttpCamera`]), files,
//!   folders and stdin, behind one trait ([`FrameSource`]); every frame is
//!   checked ([`validate_jpeg`], [`decode_jpeg`]) so a truncated JPEG never
//!   reaches the model.
//! - [`align`]: initial rotation plus reference marks found by normalised
//!   cross-correlation, giving an [`Affine`] from the aligned frame to the
//!   camera frame, with the match quality; failure is an error.
//! - [`regions`]: digit boxes or a split counter window, sampled straight
//!   through the transform into model-sized images.
//! - [`pipeline`]: all of it from JPEG bytes in one call; [`auto`] proposes
//!   the digit boxes of a new meter, [`row::propose_rotated_by`] also its
//!   rotation (a digit reader chooses among the rows that may be the
//!   counter).
//! - [`track`]: a [`Tracker`] per meter follows a camera that moved: when
//!   the local search fails, the [`wide`] search (marks turned and scaled
//!   over the whole frame) or the digit row itself re-finds the meter; such
//!   an alignment counts only when the digit row confirms it
//!   ([`row::check_row`]), and a new place becomes the reference after
//!   consistent frames, reported as a [`CameraMove`].
//!
//! ```
//! use meter_synth::{FrameParams, MeterLayout};
//! use meter_vision::{Aligner, Mark, Pipeline, Regions};
//!
//! let layout = MeterLayout::default();
//! let mut aligner = Aligner::builder();
//! for (k, m) in layout.marks.iter().enumerate() {
//!     let template = image::imageops::grayscale(&layout.mark_template(k).unwrap());
//!     aligner = aligner.mark(Mark { template, x: m[0].into(), y: m[1].into() });
//! }
//! let pipeline = Pipeline::builder()
//!     .aligner(aligner.build().unwrap())
//!     .regions(Regions::Boxes(layout.digits.clone()))
//!     .digit_size(20, 32)
//!     .build()
//!     .unwrap();
//! let shot = layout.render(&FrameParams { counter: 4711.0, rotation_deg: 2.0, shift: (7.0, -5.0), ..Default::default() });
//! let out = pipeline.process_image(shot.image).unwrap();
//! let found = out.alignment.correction().unwrap();
//! assert!((found.rotation_deg() - 2.0).abs() < 0.3);
//! assert_eq!(out.digits.len(), 6);
//! ```
#![deny(missing_docs)]

pub mod align;
pub mod auto;
pub mod draw;
pub mod error;
pub mod geometry;
pub mod jpeg;
pub mod pipeline;
pub mod regions;
pub mod row;
mod sample;
pub mod source;
pub mod track;
pub mod wide;
mod zncc;

pub use align::{Aligner, AlignerBuilder, Alignment, Mark, MarkMatch};
pub use auto::{propose_digits, Proposal};
pub use draw::draw_box;
pub use error::{JpegDefect, VisionError};
pub use geometry::{Affine, MotionModel};
pub use jpeg::{check_grey_bottom, decode_jpeg, validate_jpeg, JpegInfo};
pub use pipeline::{CounterWindow, MarkSpec, MeterGeometry, Pipeline, PipelineBuilder, Processed};
pub use regions::{aligned_frame, extract_digits, split_window, Regions};
pub use row::{check_row, propose_rotated_by, rotated_candidates, Oriented, RowCheck};
pub use sample::{sample_rect, Resample};
pub use source::{
    newest_jpeg, FileSource, FolderOrder, FolderSource, Frame, FrameSource, HttpCamera,
    SourceOptions, SourceSpec, StdinSource, StopSignal,
};
pub use track::{AlignMethod, CameraMove, Tracker, TrackerSettings, Tracking};
pub use wide::WideSearch;
pub use zncc::locate;
