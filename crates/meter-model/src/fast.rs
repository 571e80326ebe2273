//! The lean inference path: batch-norm folded into the convolutions,
//! channel-last buffers allocated once per batch, and loops that the compiler
//! vectorises for the best instruction set found at run time (via `pulp`).
//! Tested to agree with the candle forward pass on the same weights.

use image::RgbImage;

use crate::arch::{Architecture, BN_EPS};
use crate::weights::Weights;
use crate::CLASSES;

/// One 3x3 convolution with its batch-norm folded in.
#[derive(Debug, Clone)]
struct FoldedConv {
    cin: usize,
    cout: usize,
    /// Layout `[ky][kx][ci][co]`.
    w: Vec<f32>,
    b: Vec<f32>,
}

/// The folded network.
#[derive(Debug, Clone)]
pub(crate) struct FastNet {
    width: usize,
    height: usize,
    convs: Vec<FoldedConv>,
    /// Layout `[feature (y, x, c)][class]`.
    head_w: Vec<f32>,
    head_b: Vec<f32>,
}

impl FastNet {
    /// Folds the weights (which the caller has checked against `arch`).
    pub(crate) fn fold(arch: &Architecture, weights: &Weights) -> Self {
        let mut convs = Vec::new();
        let mut cin = 3;
        for (i, &cout) in arch.channels.iter().enumerate() {
            let w = weights.get(&format!("conv{i}.weight"));
            let gamma = weights.get(&format!("bn{i}.weight"));
            let beta = weights.get(&format!("bn{i}.bias"));
            let mean = weights.get(&format!("bn{i}.running_mean"));
            let var = weights.get(&format!("bn{i}.running_var"));
            let mut fw = vec![0f32; 9 * cin * cout];
            let mut fb = vec![0f32; cout];
            for co in 0..cout {
                let s = gamma[co] / (var[co] + BN_EPS as f32).sqrt();
                fb[co] = beta[co] - mean[co] * s;
                for ci in 0..cin {
                    for k in 0..9 {
                        // candle layout [co][ci][ky][kx]
                        fw[(k * cin + ci) * cout + co] = w[(co * cin + ci) * 9 + k] * s;
                    }
                }
            }
            convs.push(FoldedConv {
                cin,
                cout,
                w: fw,
                b: fb,
            });
            cin = cout;
        }
        // candle flattens (C, H, W); the fast path keeps (H, W, C).
        let (fh, fw_) = arch.final_hw();
        let c = arch.channels[2];
        let hw = weights.get("head.weight");
        let feats = c * fh * fw_;
        let mut head_w = vec![0f32; feats * CLASSES];
        for o in 0..CLASSES {
            for ch in 0..c {
                for y in 0..fh {
                    for x in 0..fw_ {
                        let src = o * feats + ch * fh * fw_ + y * fw_ + x;
                        let dst = ((y * fw_ + x) * c + ch) * CLASSES + o;
                        head_w[dst] = hw[src];
                    }
                }
            }
        }
        Self {
            width: arch.width as usize,
            height: arch.height as usize,
            convs,
            head_w,
            head_b: weights.get("head.bias").to_vec(),
        }
    }

    /// Logits for each image (already at the input size), written to
    /// `out[i * CLASSES..]`.
    pub(crate) fn logits(&self, images: &[&RgbImage], out: &mut [f32]) {
        pulp::Arch::new().dispatch(Forward {
            net: self,
            images,
            out,
        });
    }

    #[inline(always)]
    fn logits_impl(&self, images: &[&RgbImage], out: &mut [f32]) {
        let mut scratch = Scratch::new(self);
        for (img, logits) in images.iter().zip(out.chunks_exact_mut(CLASSES)) {
            self.forward_one(img, &mut scratch, logits);
        }
    }

    #[inline(always)]
    fn forward_one(&self, img: &RgbImage, s: &mut Scratch, logits: &mut [f32]) {
        let (mut h, mut w) = (self.height, self.width);
        // Standardised input into the interior of the zero-padded buffer.
        let raw = img.as_raw();
        let (mean, scale) = crate::preprocess::standardisation(raw);
        let pw = w + 2;
        for y in 0..h {
            let src = &raw[y * w * 3..(y + 1) * w * 3];
            let dst = &mut s.padded[0][((y + 1) * pw + 1) * 3..((y + 1) * pw + 1 + w) * 3];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = (f32::from(v) - mean) * scale;
            }
        }
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            conv_relu(conv, &s.padded[i], h, w, &mut s.conv_out);
            let (nh, nw) = (h / 2, w / 2);
            if i == last {
                max_pool(&s.conv_out, h, w, conv.cout, &mut s.features, false);
            } else {
                max_pool(&s.conv_out, h, w, conv.cout, &mut s.padded[i + 1], true);
            }
            h = nh;
            w = nw;
        }
        head(&s.features, &self.head_w, &self.head_b, logits);
    }
}

/// The batch forward pass as a `pulp` operation: `with_simd` and everything
/// it calls are inlined into pulp's function compiled for the detected
/// instruction set (AVX2+FMA on x86-64), so the plain loops below are
/// vectorised for it and `mul_add` is a single instruction.
struct Forward<'a> {
    net: &'a FastNet,
    images: &'a [&'a RgbImage],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.net.logits_impl(self.images, self.out);
    }
}

/// Buffers for one image, reused across the batch. Padding borders are zero
/// from allocation and never written.
struct Scratch {
    padded: Vec<Vec<f32>>,
    conv_out: Vec<f32>,
    features: Vec<f32>,
}

impl Scratch {
    fn new(net: &FastNet) -> Self {
        let (mut h, mut w) = (net.height, net.width);
        let mut padded = Vec::new();
        let mut max_out = 0;
        for conv in &net.convs {
            padded.push(vec![0f32; (h + 2) * (w + 2) * conv.cin]);
            max_out = max_out.max(h * w * conv.cout);
            h /= 2;
            w /= 2;
        }
        let features = vec![0f32; h * w * net.convs.last().map_or(0, |c| c.cout)];
        Self {
            padded,
            conv_out: vec![0f32; max_out],
            features,
        }
    }
}

#[inline(always)]
fn conv_relu(conv: &FoldedConv, inp: &[f32], h: usize, w: usize, out: &mut [f32]) {
    match conv.cout {
        8 => conv_relu_n::<8>(conv, inp, h, w, out),
        12 => conv_relu_n::<12>(conv, inp, h, w, out),
        16 => conv_relu_n::<16>(conv, inp, h, w, out),
        24 => conv_relu_n::<24>(conv, inp, h, w, out),
        32 => conv_relu_n::<32>(conv, inp, h, w, out),
        48 => conv_relu_n::<48>(conv, inp, h, w, out),
        64 => conv_relu_n::<64>(conv, inp, h, w, out),
        _ => conv_relu_dyn(conv, inp, h, w, out),
    }
}

/// Direct 3x3 convolution over a zero-padded channel-last input with `N`
/// output channels kept in registers; two output pixels at a time share each
/// weight load.
#[inline(always)]
fn conv_relu_n<const N: usize>(
    conv: &FoldedConv,
    inp: &[f32],
    h: usize,
    w: usize,
    out: &mut [f32],
) {
    let cin = conv.cin;
    let pw = w + 2;
    let span = 3 * cin; // one kernel row: (kx, ci) contiguous in the padded input
    let bias: &[f32; N] = conv.b.as_slice().try_into().expect("bias length = N");
    for y in 0..h {
        let mut x = 0;
        while x + 2 <= w {
            let mut a0 = *bias;
            let mut a1 = *bias;
            for ky in 0..3 {
                let base = ((y + ky) * pw + x) * cin;
                let r0 = &inp[base..base + span];
                let r1 = &inp[base + cin..base + cin + span];
                let wrow = &conv.w[ky * span * N..(ky + 1) * span * N];
                for ((wk, &v0), &v1) in wrow.chunks_exact(N).zip(r0).zip(r1) {
                    let wk: &[f32; N] = wk.try_into().expect("chunk of N");
                    for j in 0..N {
                        a0[j] = v0.mul_add(wk[j], a0[j]);
                        a1[j] = v1.mul_add(wk[j], a1[j]);
                    }
                }
            }
            let o = (y * w + x) * N;
            for j in 0..N {
                out[o + j] = a0[j].max(0.0);
                out[o + N + j] = a1[j].max(0.0);
            }
            x += 2;
        }
        if x < w {
            let mut a0 = *bias;
            for ky in 0..3 {
                let base = ((y + ky) * pw + x) * cin;
                let r0 = &inp[base..base + span];
                let wrow = &conv.w[ky * span * N..(ky + 1) * span * N];
                for (wk, &v0) in wrow.chunks_exact(N).zip(r0) {
                    let wk: &[f32; N] = wk.try_into().expect("chunk of N");
                    for j in 0..N {
                        a0[j] = v0.mul_add(wk[j], a0[j]);
                    }
                }
            }
            let o = (y * w + x) * N;
            for j in 0..N {
                out[o + j] = a0[j].max(0.0);
            }
        }
    }
}

/// The same for any channel count (not used by the shipped shapes).
#[inline(always)]
fn conv_relu_dyn(conv: &FoldedConv, inp: &[f32], h: usize, w: usize, out: &mut [f32]) {
    let (cin, n) = (conv.cin, conv.cout);
    let pw = w + 2;
    let span = 3 * cin;
    for y in 0..h {
        for x in 0..w {
            let acc = &mut out[(y * w + x) * n..(y * w + x + 1) * n];
            acc.copy_from_slice(&conv.b);
            for ky in 0..3 {
                let base = ((y + ky) * pw + x) * cin;
                let row = &inp[base..base + span];
                let wrow = &conv.w[ky * span * n..(ky + 1) * span * n];
                for (wk, &v) in wrow.chunks_exact(n).zip(row) {
                    for (a, &wv) in acc.iter_mut().zip(wk) {
                        *a = v.mul_add(wv, *a);
                    }
                }
            }
            for a in acc.iter_mut() {
                *a = a.max(0.0);
            }
        }
    }
}

/// 2x2 max-pool (floor) of a (h, w, c) buffer, into the interior of a padded
/// buffer or into a dense one.
#[inline(always)]
fn max_pool(inp: &[f32], h: usize, w: usize, c: usize, out: &mut [f32], padded: bool) {
    let (oh, ow) = (h / 2, w / 2);
    let opw = if padded { ow + 2 } else { ow };
    let off = usize::from(padded);
    for y in 0..oh {
        for x in 0..ow {
            let i00 = ((2 * y) * w + 2 * x) * c;
            let i10 = ((2 * y + 1) * w + 2 * x) * c;
            let o = ((y + off) * opw + x + off) * c;
            for j in 0..c {
                out[o + j] = inp[i00 + j]
                    .max(inp[i00 + c + j])
                    .max(inp[i10 + j])
                    .max(inp[i10 + c + j]);
            }
        }
    }
}

#[inline(always)]
fn head(features: &[f32], w: &[f32], b: &[f32], logits: &mut [f32]) {
    logits.copy_from_slice(b);
    for (wk, &v) in w.chunks_exact(CLASSES).zip(features) {
        for (a, &wv) in logits.iter_mut().zip(wk) {
            *a = v.mul_add(wv, *a);
        }
    }
}
