//! The network: its shape description and its candle implementation (used
//! for training and as the reference for the fast inference path).

use candle_core::{CpuStorage, CustomOp1, Layout, Module, ModuleT, Result, Shape, Tensor};
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

impl Conv3x3 {
    /// `cols`: (c*9, n*h*w), the whole batch side by side, so that one large
    /// matmul (which the CPU backend spreads over threads) replaces n small
    /// ones (which it does not), in the forward and the backward pass.
    fn matmul_columns(&self, cols: &Tensor, n: usize, h: usize, w: usize) -> Result<Tensor> {
        let cout = self.weight.dim(0)?;
        let k = cols.dim(0)?;
        let wm = self.weight.reshape((cout, k))?;
        wm.matmul(cols)?
            .reshape((cout, n, h, w))?
            .transpose(0, 1)?
            .contiguous()
    }
}

impl Module for Conv3x3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, _, h, w) = x.dims4()?;
        let cols = x.contiguous()?.apply_op1(Im2Col)?;
        self.matmul_columns(&cols, n, h, w)
    }
}

/// im2col of a 3x3, padding-1 convolution as one candle op:
/// (n, c, h, w) -> (c*9, n*h*w), rows in the weight's (c, ky, kx) order; its
/// backward pass is the matching col2im. Built from candle's pad, narrow and
/// stack instead, the backward pass adds nine zero-padded full-size gradients
/// per layer, which took most of the training time.
struct Im2Col;

/// The backward of [`Im2Col`]: sums (c*9, n*h*w) columns back into (n, c, h, w).
struct Col2Im {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
}

/// The f32 data of a contiguous tensor.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("{op}: f32 tensors only");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&v[start..end]),
        None => candle_core::bail!("{op}: contiguous tensors only"),
    }
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let x = contiguous_f32(storage, layout, self.name())?;
        let (hw, nhw) = (h * w, n * h * w);
        let mut out = vec![0f32; c * 9 * nhw];
        for ci in 0..c {
            for ky in 0..3 {
                for kx in 0..3 {
                    let row = &mut out[(ci * 9 + ky * 3 + kx) * nhw..][..nhw];
                    for img in 0..n {
                        let plane = &x[(img * c + ci) * hw..][..hw];
                        for y in 0..h {
                            let Some(sy) = (y + ky).checked_sub(1).filter(|&sy| sy < h) else {
                                continue;
                            };
                            let dst = &mut row[img * hw + y * w..][..w];
                            for (xx, d) in dst.iter_mut().enumerate() {
                                if let Some(sx) = (xx + kx).checked_sub(1).filter(|&sx| sx < w) {
                                    *d = plane[sy * w + sx];
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((c * 9, nhw))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let grad = grad_res
            .contiguous()?
            .apply_op1_no_bwd(&Col2Im { n, c, h, w })?;
        Ok(Some(grad))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Self { n, c, h, w } = *self;
        let g = contiguous_f32(storage, layout, self.name())?;
        let (hw, nhw) = (h * w, n * h * w);
        if g.len() != c * 9 * nhw {
            candle_core::bail!("col2im3x3: {} values for ({c}*9, {nhw})", g.len());
        }
        let mut out = vec![0f32; n * c * hw];
        for ci in 0..c {
            for ky in 0..3 {
                for kx in 0..3 {
                    let row = &g[(ci * 9 + ky * 3 + kx) * nhw..][..nhw];
                    for img in 0..n {
                        let plane = &mut out[(img * c + ci) * hw..][..hw];
                        for y in 0..h {
                            let Some(sy) = (y + ky).checked_sub(1).filter(|&sy| sy < h) else {
                                continue;
                            };
                            let src = &row[img * hw + y * w..][..w];
                            for (xx, v) in src.iter().enumerate() {
                                if let Some(sx) = (xx + kx).checked_sub(1).filter(|&sx| sx < w) {
                                    plane[sy * w + sx] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
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
        x: &Tensor,
        train: bool,
        dropout_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        for b in &self.blocks {
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
        self.forward_masked(x, train, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The im2col op and its col2im backward against candle's own conv2d:
    /// same output, same gradients for the input and the weights.
    #[test]
    fn im2col_convolution_matches_candle_conv2d_forward_and_backward() {
        let dev = Device::Cpu;
        let (n, c, h, w, cout) = (3, 4, 7, 5, 6);
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap()).unwrap();
        let weight =
            Var::from_tensor(&Tensor::randn(0f32, 1.0, (cout, c, 3, 3), &dev).unwrap()).unwrap();
        let probe = Tensor::randn(0f32, 1.0, (n, cout, h, w), &dev).unwrap();
        let ours = Conv3x3 {
            weight: weight.as_tensor().clone(),
        }
        .forward(x.as_tensor())
        .unwrap();
        let theirs = x
            .as_tensor()
            .conv2d(weight.as_tensor(), 1, 1, 1, 1)
            .unwrap();
        let max_diff = |a: &Tensor, b: &Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(max_diff(&ours, &theirs) < 1e-4);
        let g_ours = (ours * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_theirs = (theirs * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &weight] {
            let (a, b) = (g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
            assert!(
                max_diff(a, b) < 1e-3,
                "gradient differs by {}",
                max_diff(a, b)
            );
        }
    }
}
