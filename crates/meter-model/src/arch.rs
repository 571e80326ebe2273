//! The network: its shape description and its candle implementation (used
//! for training and as the reference for the fast inference path).

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

/// Name of the only architecture this version knows.
pub const ARCH_NAME: &str = "tenths-cnn";
/// Version of that architecture.
pub const ARCH_VERSION: u32 = 1;
/// Batch-norm epsilon (also used when folding).
pub(crate) const BN_EPS: f64 = 1e-5;

/// The network's shape: three 3x3 conv + batch-norm + ReLU + 2x2 max-pool
/// blocks, then a linear head over the 100 classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Architecture family, [`ARCH_NAME`].
    pub name: String,
    /// Architecture version, [`ARCH_VERSION`].
    pub version: u32,
    /// Output channels of the three conv blocks.
    pub channels: [usize; 3],
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
}

impl Default for Architecture {
    fn default() -> Self {
        Self {
            name: ARCH_NAME.to_owned(),
            version: ARCH_VERSION,
            channels: [16, 32, 48],
            width: 20,
            height: 32,
        }
    }
}

impl Architecture {
    /// Spatial size (h, w) after the three pools.
    pub(crate) fn final_hw(&self) -> (usize, usize) {
        let (mut h, mut w) = (self.height as usize, self.width as usize);
        for _ in 0..3 {
            h /= 2;
            w /= 2;
        }
        (h, w)
    }

    /// Features entering the head.
    pub(crate) fn head_in(&self) -> usize {
        let (h, w) = self.final_hw();
        self.channels[2] * h * w
    }

    /// Every tensor of the model file with its shape, in a stable order.
    pub(crate) fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut cin = 3;
        for (i, &c) in self.channels.iter().enumerate() {
            out.push((format!("conv{i}.weight"), vec![c, cin, 3, 3]));
            for p in ["weight", "bias", "running_mean", "running_var"] {
                out.push((format!("bn{i}.{p}"), vec![c]));
            }
            cin = c;
        }
        out.push(("head.weight".into(), vec![crate::CLASSES, self.head_in()]));
        out.push(("head.bias".into(), vec![crate::CLASSES]));
        out
    }
}

/// A 3x3, padding 1, bias-free convolution computed as im2col + matmul with
/// candle tensor ops: its backward pass is made of matmuls too, several times
/// faster on CPU than candle's `conv2d` backward.
#[derive(Debug, Clone)]
pub(crate) struct Conv3x3 {
    weight: Tensor,
}

/// A network input: standardised images, or (for the first layer, which
/// needs no gradient) their im2col columns computed outside the graph.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// (N, 3, H, W).
    Images(&'a Tensor),
    /// (N, 27, H*W) as made by [`im2col3x3`], with the image height and width.
    Columns(&'a Tensor, usize, usize),
}

/// im2col of one (c, h, w) image for a 3x3, padding-1 convolution, appended
/// to `out` as (c*9, h*w) in the order of the weight's (c, ky, kx).
pub(crate) fn im2col3x3(x: &[f32], c: usize, h: usize, w: usize, out: &mut Vec<f32>) {
    for ci in 0..c {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for ky in 0..3 {
            for kx in 0..3 {
                for y in 0..h {
                    for xx in 0..w {
                        let (sy, sx) = (y + ky, xx + kx);
                        let v = if sy >= 1 && sy <= h && sx >= 1 && sx <= w {
                            plane[(sy - 1) * w + sx - 1]
                        } else {
                            0.0
                        };
                        out.push(v);
                    }
                }
            }
        }
    }
}

impl Conv3x3 {
    fn forward_columns(&self, cols: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let (n, k, _) = cols.dims3()?;
        let cout = self.weight.dim(0)?;
        let wm = self.weight.reshape((cout, k))?;
        wm.broadcast_matmul(cols)?.reshape((n, cout, h, w))
    }
}

impl Module for Conv3x3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let cout = self.weight.dim(0)?;
        let xp = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
        let mut cols = Vec::with_capacity(9);
        for ky in 0..3 {
            let row = xp.narrow(2, ky, h)?;
            for kx in 0..3 {
                cols.push(row.narrow(3, kx, w)?);
            }
        }
        // (n, c, 9, h, w) -> (n, c*9, h*w); matches the weight's (c, ky, kx) order.
        let cols = Tensor::stack(&cols, 2)?.reshape((n, c * 9, h * w))?;
        let wm = self.weight.reshape((cout, c * 9))?;
        wm.broadcast_matmul(&cols)?.reshape((n, cout, h, w))
    }
}

/// Conv (no bias) + batch-norm + ReLU.
#[derive(Debug, Clone)]
pub(crate) struct ConvBn {
    conv: Conv3x3,
    bn: BatchNorm,
}

pub(crate) fn conv_bn(cin: usize, cout: usize, i: usize, vb: &VarBuilder) -> Result<ConvBn> {
    let weight = vb.pp(format!("conv{i}")).get_with_hints(
        (cout, cin, 3, 3),
        "weight",
        candle_nn::init::DEFAULT_KAIMING_NORMAL,
    )?;
    let conv = Conv3x3 { weight };
    let bn_cfg = BatchNormConfig {
        eps: BN_EPS,
        momentum: 0.05,
        ..Default::default()
    };
    let bn = candle_nn::batch_norm(cout, bn_cfg, vb.pp(format!("bn{i}")))?;
    Ok(ConvBn { conv, bn })
}

impl ModuleT for ConvBn {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_t(&self.conv.forward(x)?, train)?.relu()
    }
}

/// The candle network.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    blocks: Vec<ConvBn>,
    head: Linear,
}

/// Builds the network's variables under `vb` (names as in [`Architecture::tensor_shapes`]).
pub(crate) fn net(arch: &Architecture, vb: VarBuilder) -> Result<Net> {
    let mut blocks = Vec::new();
    let mut cin = 3;
    for (i, &c) in arch.channels.iter().enumerate() {
        blocks.push(conv_bn(cin, c, i, &vb)?);
        cin = c;
    }
    let head = candle_nn::linear(arch.head_in(), crate::CLASSES, vb.pp("head"))?;
    Ok(Net { blocks, head })
}

impl Net {
    /// `x`: (N, 3, H, W) standardised input; returns (N, 100) logits.
    /// `dropout_mask` (N, features), already scaled, is applied before the
    /// head (it is made by the caller from a seeded generator, so training is
    /// reproducible).
    pub(crate) fn forward_masked(
        &self,
        input: Input<'_>,
        train: bool,
        dropout_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let first = &self.blocks[0];
        let y = match input {
            Input::Images(x) => first.conv.forward(x)?,
            Input::Columns(cols, h, w) => first.conv.forward_columns(cols, h, w)?,
        };
        let mut x = first.bn.forward_t(&y, train)?.relu()?.max_pool2d(2)?;
        for b in &self.blocks[1..] {
            x = b.forward_t(&x, train)?.max_pool2d(2)?;
        }
        let mut x = x.flatten_from(1)?;
        if let Some(mask) = dropout_mask {
            x = x.mul(mask)?;
        }
        self.head.forward(&x)
    }
}

impl ModuleT for Net {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_masked(Input::Images(x), train, None)
    }
}
