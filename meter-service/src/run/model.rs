//! The model the meters read with, swapped while they run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use meter_model::DigitModel;

use crate::reader::MeterReader;

/// The model the meters read with. A promoted retrain replaces it; each
/// meter notices the new generation before its next frame.
#[derive(Debug)]
pub struct SharedModel {
    generation: AtomicU64,
    model: RwLock<DigitModel>,
}

impl SharedModel {
    /// Starts at generation 0 with `model`.
    pub fn new(model: DigitModel) -> Self {
        Self {
            generation: AtomicU64::new(0),
            model: RwLock::new(model),
        }
    }

    /// Bumped by every [`SharedModel::replace`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current model and its generation.
    pub fn get(&self) -> (u64, DigitModel) {
        let model = self.model.read().unwrap_or_else(|e| e.into_inner());
        (self.generation(), model.clone())
    }

    /// Makes `model` current; returns its generation.
    pub fn replace(&self, model: DigitModel) -> u64 {
        let mut slot = self.model.write().unwrap_or_else(|e| e.into_inner());
        *slot = model;
        // Bumped under the write lock: whoever sees the new generation and
        // then reads the model gets the new one.
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Gives `reader` the current model when it changed since generation
    /// `seen`; returns the generation the reader now has.
    pub fn refresh(&self, reader: &mut MeterReader, seen: u64) -> u64 {
        if self.generation() == seen {
            return seen;
        }
        let (generation, model) = self.get();
        let name = reader.meter().name.clone();
        match reader.set_model(model) {
            Ok(()) => log::info!("meter {name}: reading with model generation {generation}"),
            Err(e) => log::error!("{e:#}; keeping the previous model"),
        }
        generation
    }
}
