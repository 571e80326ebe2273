//! The digit model: loading, saving and batch prediction.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, ModuleT, Tensor};
use image::RgbImage;
use meter_core::{DigitPrediction, Distribution, DistributionError};
use serde::{Deserialize, Serialize};

use crate::arch::{Architecture, ARCH_NAME, ARCH_VERSION};
use crate::fast::FastNet;
use crate::preprocess::{fit_to_input, write_chw};
use crate::weights::Weights;
use crate::{ModelError, CLASSES};

/// The safetensors metadata key holding [`ModelMetadata`] as JSON.
pub const METADATA_KEY: &str = "meter_model";
/// The `format` value of meter-reader digit models.
pub const FORMAT: &str = "meter-reader-digits";
/// The model file format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// How many alternatives a prediction lists.
pub const TOP_K: usize = DigitPrediction::TOP;

/// The model file bundled with the crate (see `models/README.md`).
const SHIPPED: &[u8] = include_bytes!("../../models/digits.safetensors");

/// How an image is normalised before the network sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Normalisation {
    /// Resize to the input size (triangle filter), then subtract the image's
    /// mean and divide by its standard deviation (at least 8/255), over all
    /// channels together.
    PerImageStandardise,
}

/// What a model file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Always [`FORMAT`].
    pub format: String,
    /// The file format version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The network's shape, including the input size.
    pub architecture: Architecture,
    /// Number of classes (100 tenths).
    pub classes: usize,
    /// Input normalisation.
    pub normalisation: Normalisation,
    /// Softmax temperature fitted on validation data, so that confidences are calibrated.
    pub temperature: f32,
    /// Temperatures fitted on single meters' own images, by meter name
    /// (`meter retrain`): one meter's calibration never sharpens or softens
    /// another's. A meter not listed reads at `temperature`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meter_temperatures: BTreeMap<String, f32>,
    /// How the model was trained, when known.
    #[serde(default)]
    pub training: Option<TrainingSummary>,
    /// Its metrics on its validation split, when known.
    #[serde(default)]
    pub validation: Option<ValidationSummary>,
}

impl ModelMetadata {
    /// Metadata for a fresh, untrained model of this architecture.
    pub fn new(architecture: Architecture) -> Self {
        Self {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            architecture,
            classes: CLASSES,
            normalisation: Normalisation::PerImageStandardise,
            temperature: 1.0,
            meter_temperatures: BTreeMap::new(),
            training: None,
            validation: None,
        }
    }
}

/// A summary of the training run that produced a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// The dataset folders.
    pub data: Vec<String>,
    /// Images trained on.
    pub train_images: usize,
    /// Images held out for validation.
    pub validation_images: usize,
    /// Whole sources held out for validation.
    pub holdout_sources: Vec<String>,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    /// The random seed.
    pub seed: u64,
    /// The model training started from, if fine-tuned.
    pub init: Option<String>,
}

/// Headline validation metrics stored in a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSummary {
    /// Images evaluated.
    pub n: usize,
    /// Fraction predicted exactly.
    pub exact: f64,
    /// Fraction within one tenth (circular).
    pub within_0_1: f64,
    /// Fraction of nearly settled labels whose digit is right.
    pub settled_digit: f64,
}

#[derive(Debug)]
struct Inner {
    metadata: ModelMetadata,
    weights: Weights,
    fast: FastNet,
}

/// A loaded digit model. Cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct DigitModel {
    inner: Arc<Inner>,
    /// Read every image also shifted (see [`DigitModel::with_agreement`]).
    agreement: bool,
    /// The meter's own temperature (see [`DigitModel::for_meter`]).
    meter_temperature: Option<f32>,
}

impl DigitModel {
    /// Loads a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses a model from the bytes of a model file; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, ModelError> {
        let st =
            safetensors::SafeTensors::deserialize(bytes).map_err(|source| ModelError::Format {
                origin: origin.to_owned(),
                source,
            })?;
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|source| {
            ModelError::Format {
                origin: origin.to_owned(),
                source,
            }
        })?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| ModelError::MissingMetadata {
                origin: origin.to_owned(),
                key: METADATA_KEY,
            })?;
        let metadata: ModelMetadata =
            serde_json::from_str(json).map_err(|source| ModelError::BadMetadata {
                origin: origin.to_owned(),
                source,
            })?;
        check_compatible(&metadata, origin)?;
        let weights = Weights::from_safetensors(&st, &metadata.architecture, origin)?;
        Ok(Self::from_parts(metadata, weights))
    }

    pub(crate) fn from_parts(metadata: ModelMetadata, weights: Weights) -> Self {
        let fast = FastNet::fold(&metadata.architecture, &weights);
        Self {
            inner: Arc::new(Inner {
                metadata,
                weights,
                fast,
            }),
            agreement: false,
            meter_temperature: None,
        }
    }

    /// The pretrained model that ships with meter-reader (parsed once).
    pub fn shipped() -> Self {
        static SHIPPED_MODEL: OnceLock<DigitModel> = OnceLock::new();
        SHIPPED_MODEL
            .get_or_init(|| {
                // The bundled file is checked by this crate's tests.
                Self::from_bytes(SHIPPED, "models/digits.safetensors (built in)")
                    .expect("the built-in model is valid")
            })
            .clone()
    }

    /// The bytes of the built-in model file.
    pub fn shipped_bytes() -> &'static [u8] {
        SHIPPED
    }

    /// The input size (width, height) images are resized to.
    pub fn input_size(&self) -> (u32, u32) {
        let a = &self.inner.metadata.architecture;
        (a.width, a.height)
    }

    /// What the model file says about itself.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.inner.metadata
    }

    /// This model as it reads meter `name`: at the meter's own temperature
    /// when the model file has one, else unchanged (a model already set to
    /// a meter stays so).
    pub fn for_meter(&self, name: &str) -> Self {
        let mut m = self.clone();
        if let Some(&t) = self.inner.metadata.meter_temperatures.get(name) {
            m.meter_temperature = Some(t);
        }
        m
    }

    /// The softmax temperature it reads at.
    pub fn temperature(&self) -> f32 {
        self.meter_temperature
            .unwrap_or(self.inner.metadata.temperature)
    }

    /// A copy with other metadata (same weights), e.g. to record training details.
    pub fn with_metadata(&self, metadata: ModelMetadata) -> Result<Self, ModelError> {
        check_compatible(&metadata, "new metadata")?;
        if metadata.architecture != self.inner.metadata.architecture {
            return Err(ModelError::Incompatible {
                origin: "new metadata".into(),
                what: "architecture",
                expected: format!("{:?}", self.inner.metadata.architecture),
                got: format!("{:?}", metadata.architecture),
            });
        }
        Ok(Self::from_parts(metadata, self.inner.weights.clone()))
    }

    pub(crate) fn weights(&self) -> &Weights {
        &self.inner.weights
    }

    /// Serialises the model file (safetensors with JSON metadata).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let json = serde_json::to_string(&self.inner.metadata).map_err(|source| {
            ModelError::BadMetadata {
                origin: "model metadata".into(),
                source,
            }
        })?;
        let meta = HashMap::from([(METADATA_KEY.to_owned(), json)]);
        self.inner
            .weights
            .to_safetensors(meta)
            .map_err(|source| ModelError::Format {
                origin: "model being saved".into(),
                source,
            })
    }

    /// Writes the model file; written to a temporary file first and renamed,
    /// so an existing model is never left half-written.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".partial");
        let tmp = path.with_file_name(tmp_name);
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Raw logits (before temperature) of the fast inference path, one row
    /// of 100 per image.
    pub fn logits(&self, images: &[RgbImage]) -> Result<Vec<f32>, ModelError> {
        let (w, h) = self.input_size();
        let fitted = images
            .iter()
            .enumerate()
            .map(|(index, img)| {
                if img.width() == 0 || img.height() == 0 {
                    Err(ModelError::EmptyImage {
                        index,
                        width: img.width(),
                        height: img.height(),
                    })
                } else {
                    Ok(fit_to_input(img, w, h))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&RgbImage> = fitted.iter().map(|c| c.as_ref()).collect();
        let mut out = vec![0f32; images.len() * CLASSES];
        self.inner.fast.logits(&refs, &mut out);
        Ok(out)
    }

    /// The same logits computed by the candle network (the reference the
    /// fast path is tested against; slower).
    pub fn logits_reference(&self, images: &[RgbImage]) -> Result<Vec<f32>, ModelError> {
        let (w, h) = self.input_size();
        let dev = Device::Cpu;
        let tensors: HashMap<String, Tensor> = self
            .inner
            .weights
            .0
            .iter()
            .map(|(n, (s, v))| Ok((n.clone(), Tensor::from_slice(v, s.as_slice(), &dev)?)))
            .collect::<Result<_, candle_core::Error>>()?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let net = crate::arch::net(&self.inner.metadata.architecture, vb)?;
        let x = images_to_tensor(images.iter(), w, h)?;
        let logits = net.forward_t(&x, false)?;
        Ok(logits.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Predicts each image (any size; resized to [`Self::input_size`] when
    /// needed). Runs on the calling thread.
    pub fn predict_batch(&self, images: &[RgbImage]) -> Result<Vec<DigitPrediction>, ModelError> {
        if self.agreement {
            return self.predict_agreeing(images);
        }
        let logits = self.logits(images)?;
        logits
            .chunks_exact(CLASSES)
            .enumerate()
            .map(|(index, l)| {
                prediction_from_logits(l, self.temperature())
                    .map_err(|source| ModelError::BadOutput { index, source })
            })
            .collect()
    }
}

impl DigitModel {
    /// This model reading every image three times: as given and shifted by
    /// [`AGREEMENT_SHIFT`] pixels up and down; a roller's distribution is the
    /// mean of the three, so a roller whose readings disagree loses the mass
    /// of its likeliest position (test-time agreement; three times the
    /// model's time).
    pub fn with_agreement(mut self, on: bool) -> Self {
        self.agreement = on;
        self
    }

    /// Whether it reads with test-time agreement.
    pub fn agreement(&self) -> bool {
        self.agreement
    }

    fn predict_agreeing(&self, images: &[RgbImage]) -> Result<Vec<DigitPrediction>, ModelError> {
        let n = images.len();
        let mut all: Vec<RgbImage> = Vec::with_capacity(3 * n);
        all.extend(images.iter().cloned());
        for dy in [AGREEMENT_SHIFT, -AGREEMENT_SHIFT] {
            all.extend(images.iter().map(|img| shifted(img, dy)));
        }
        let logits = self.logits(&all)?;
        let t = self.temperature();
        (0..n)
            .map(|index| {
                let mut mean = vec![0f32; CLASSES];
                for v in 0..3 {
                    let l = &logits[(v * n + index) * CLASSES..(v * n + index + 1) * CLASSES];
                    for (m, p) in mean.iter_mut().zip(softmax(l, t)) {
                        *m += p / 3.0;
                    }
                }
                Distribution::from_probs(&mean)
                    .map(DigitPrediction::from_distribution)
                    .map_err(|source| ModelError::BadOutput { index, source })
            })
            .collect()
    }
}

/// Pixels a view of test-time agreement is shifted by (vertically, the way
/// rollers turn).
pub const AGREEMENT_SHIFT: i64 = 1;

/// `img` moved `dy` pixels down (up when negative), the edge rows repeated.
fn shifted(img: &RgbImage, dy: i64) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let sy = (i64::from(y) - dy).clamp(0, i64::from(h) - 1) as u32;
        *img.get_pixel(x, sy)
    })
}

/// Stacks images into a standardised (N, 3, H, W) tensor.
pub(crate) fn images_to_tensor<'a>(
    images: impl ExactSizeIterator<Item = &'a RgbImage>,
    w: u32,
    h: u32,
) -> candle_core::Result<Tensor> {
    let n = images.len();
    let plane = (w * h) as usize * 3;
    let mut data = vec![0f32; n * plane];
    for (img, out) in images.zip(data.chunks_exact_mut(plane)) {
        write_chw(&fit_to_input(img, w, h), out);
    }
    Tensor::from_vec(data, (n, 3, h as usize, w as usize), &Device::Cpu)
}

fn check_compatible(m: &ModelMetadata, origin: &str) -> Result<(), ModelError> {
    let incompatible = |what, expected: String, got: String| {
        Err(ModelError::Incompatible {
            origin: origin.to_owned(),
            what,
            expected,
            got,
        })
    };
    if m.format != FORMAT {
        return incompatible("format", FORMAT.into(), m.format.clone());
    }
    if m.format_version != FORMAT_VERSION {
        return incompatible(
            "format_version",
            FORMAT_VERSION.to_string(),
            m.format_version.to_string(),
        );
    }
    let a = &m.architecture;
    if a.name != ARCH_NAME || a.version != ARCH_VERSION {
        return incompatible(
            "architecture",
            format!("{ARCH_NAME} v{ARCH_VERSION}"),
            format!("{} v{}", a.name, a.version),
        );
    }
    if m.classes != CLASSES {
        return incompatible("classes", CLASSES.to_string(), m.classes.to_string());
    }
    if a.width < 8 || a.height < 8 || a.width > 256 || a.height > 256 {
        return incompatible(
            "input size",
            "8..=256 x 8..=256".into(),
            format!("{}x{}", a.width, a.height),
        );
    }
    if a.channels.iter().any(|&c| c == 0 || c > 256) {
        return incompatible("channels", "1..=256".into(), format!("{:?}", a.channels));
    }
    if !(m.temperature.is_finite() && m.temperature > 0.0) {
        return incompatible("temperature", "> 0".into(), m.temperature.to_string());
    }
    if let Some((meter, t)) = m
        .meter_temperatures
        .iter()
        .find(|(_, t)| !(t.is_finite() && **t > 0.0))
    {
        return incompatible(
            "meter temperature",
            "> 0".into(),
            format!("{t} for meter {meter}"),
        );
    }
    Ok(())
}

/// Softmax with temperature, then the prediction: the arg-max, the
/// probability mass within one tenth of it, the top alternatives and the
/// whole distribution.
pub(crate) fn prediction_from_logits(
    logits: &[f32],
    temperature: f32,
) -> Result<DigitPrediction, DistributionError> {
    let probs = softmax(logits, temperature);
    Ok(DigitPrediction::from_distribution(
        Distribution::from_probs(&probs)?,
    ))
}

pub(crate) fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f32> = logits
        .iter()
        .map(|&l| ((l - max) / temperature).exp())
        .collect();
    let sum: f32 = p.iter().sum();
    for v in &mut p {
        *v /= sum;
    }
    p
}
