//! Image acquisition, alignment, cropping and segmentation of meter frames into digit images.
#![deny(missing_docs)]
