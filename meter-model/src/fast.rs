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
    /// Layout `[feature (y, x, c)][class padded to HEAD_N]`.
    head_w: Vec<f32>,
    head_b: Vec<f32>,
}

impl FastNet {
    /// Folds the weights (which the caller has checked against `arch`).
    pub(crate) fn fold(arch: &Architecture, weights: &Weights) -> Self {
        let mut convs = Vec::new();
        let (mut cin, mut cin_padded) = (3, 3);
        for (i, &cout) in arch.channels.iter().enumerate() {
            let w = weights.get(&format!("conv{i}.weight"));
            let gamma = weights.get(&format!("bn{i}.weight"));
            let beta = weights.get(&format!("bn{i}.bias"));
            let mean = weights.get(&format!("bn{i}.running_mean"));
            let var = weights.get(&format!("bn{i}.running_var"));
            let np = cout.div_ceil(LANES) * LANES;
            let mut fw = vec![0f32; 9 * cin_padded * np];
            let mut fb = vec![0f32; np];
            for co in 0..cout {
                let s = gamma[co] / (var[co] + BN_EPS as f32).sqrt();
                fb[co] = beta[co] - mean[co] * s;
                for ci in 0..cin {
                    for k in 0..9 {
                        // candle layout [co][ci][ky][kx]
                        fw[(k * cin_padded + ci) * np + co] = w[(co * cin + ci) * 9 + k] * s;
                    }
                }
            }
            convs.push(FoldedConv {
                cin: cin_padded,
                cout: np,
                w: fw,
                b: fb,
            });
            cin = cout;
            cin_padded = np;
        }
        // candle flattens (C, H, W); the fast path keeps (H, W, C_padded).
        let (fh, fw_) = arch.final_hw();
        let c = arch.channels[2];
        let cp = cin_padded;
        let hw = weights.get("head.weight");
        let feats = c * fh * fw_;
        let mut head_w = vec![0f32; fh * fw_ * cp * HEAD_N];
        for o in 0..CLASSES {
            for ch in 0..c {
                for y in 0..fh {
                    for x in 0..fw_ {
                        let src = o * feats + ch * fh * fw_ + y * fw_ + x;
                        let dst = ((y * fw_ + x) * cp + ch) * HEAD_N + o;
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
            head_b: {
                let mut b = weights.get("head.bias").to_vec();
                b.resize(HEAD_N, 0.0);
                b
            },
        }
    }

    /// Logits for each image (already at the input size), written to
    /// `out[i * CLASSES..]`.
    pub(crate) fn logits(&self, images: &[&RgbImage], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(
                simd,
                ForwardAvx2 {
                    simd,
                    net: self,
                    images,
                    out,
                },
            );
        }
        pulp::Arch::new().dispatch(Forward {
            net: self,
            images,
            out,
        });
    }

    /// The same forward pass as `logits_impl`, with the convolutions and the
    /// head written with explicit 8-lane AVX2/FMA vectors (the compiler's
    /// auto-vectorisation of the portable loops depends on inlining choices
    /// that differ between build profiles).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn logits_avx2(&self, simd: pulp::x86::V3, images: &[&RgbImage], out: &mut [f32]) {
        let mut s = Scratch::new(self);
        for (img, logits) in images.iter().zip(out.chunks_exact_mut(CLASSES)) {
            let (mut h, mut w) = (self.height, self.width);
            self.write_input(img, &mut s);
            let last = self.convs.len() - 1;
            for (i, conv) in self.convs.iter().enumerate() {
                avx2::conv_relu(simd, conv, &s.padded[i], h, w, &mut s.conv_out);
                if i == last {
                    max_pool(&s.conv_out, h, w, conv.cout, &mut s.features, false);
                } else {
                    max_pool(&s.conv_out, h, w, conv.cout, &mut s.padded[i + 1], true);
                }
                h /= 2;
                w /= 2;
            }
            avx2::head(simd, &s.features, &self.head_w, &self.head_b, logits);
        }
    }

    /// Standardised input into the interior of the zero-padded first buffer.
    #[inline(always)]
    fn write_input(&self, img: &RgbImage, s: &mut Scratch) {
        let (h, w) = (self.height, self.width);
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

#[cfg(target_arch = "x86_64")]
struct ForwardAvx2<'a> {
    simd: pulp::x86::V3,
    net: &'a FastNet,
    images: &'a [&'a RgbImage],
    out: &'a mut [f32],
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for ForwardAvx2<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.net.logits_avx2(self.simd, self.images, self.out);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use pulp::x86::V3;
    use pulp::{f32x8, Simd};

    use super::{lane, FoldedConv, HEAD_LANES, HEAD_N, LANES};

    #[inline(always)]
    fn load(s: &[f32]) -> f32x8 {
        pulp::cast(*lane(s))
    }

    #[inline(always)]
    pub(super) fn conv_relu(
        simd: V3,
        conv: &FoldedConv,
        inp: &[f32],
        h: usize,
        w: usize,
        out: &mut [f32],
    ) {
        match conv.cout / LANES {
            1 => conv_relu_c::<1>(simd, conv, inp, h, w, out),
            2 => conv_relu_c::<2>(simd, conv, inp, h, w, out),
            3 => conv_relu_c::<3>(simd, conv, inp, h, w, out),
            4 => conv_relu_c::<4>(simd, conv, inp, h, w, out),
            5 => conv_relu_c::<5>(simd, conv, inp, h, w, out),
            6 => conv_relu_c::<6>(simd, conv, inp, h, w, out),
            _ => super::conv_relu(conv, inp, h, w, out),
        }
    }

    #[inline(always)]
    fn conv_relu_c<const C: usize>(
        simd: V3,
        conv: &FoldedConv,
        inp: &[f32],
        h: usize,
        w: usize,
        out: &mut [f32],
    ) {
        let n = C * LANES;
        let cin = conv.cin;
        let pw = w + 2;
        let span = 3 * cin;
        let bias: [f32x8; C] = core::array::from_fn(|c| load(&conv.b[c * LANES..(c + 1) * LANES]));
        let zero = simd.splat_f32s(0.0);
        for y in 0..h {
            let mut x = 0;
            while x < w {
                let pair = x + 1 < w;
                let mut a0 = bias;
                let mut a1 = bias;
                for ky in 0..3 {
                    let base = ((y + ky) * pw + x) * cin;
                    let r0 = &inp[base..base + span];
                    let wrow = &conv.w[ky * span * n..(ky + 1) * span * n];
                    if pair {
                        let r1 = &inp[base + cin..base + cin + span];
                        for ((wk, &v0), &v1) in wrow.chunks_exact(n).zip(r0).zip(r1) {
                            let (b0, b1) = (simd.splat_f32s(v0), simd.splat_f32s(v1));
                            for c in 0..C {
                                let wc = load(&wk[c * LANES..(c + 1) * LANES]);
                                a0[c] = simd.mul_add_f32s(b0, wc, a0[c]);
                                a1[c] = simd.mul_add_f32s(b1, wc, a1[c]);
                            }
                        }
                    } else {
                        for (wk, &v0) in wrow.chunks_exact(n).zip(r0) {
                            let b0 = simd.splat_f32s(v0);
                            for c in 0..C {
                                let wc = load(&wk[c * LANES..(c + 1) * LANES]);
                                a0[c] = simd.mul_add_f32s(b0, wc, a0[c]);
                            }
                        }
                    }
                }
                let o = (y * w + x) * n;
                for (c, dst) in out[o..o + n].chunks_exact_mut(LANES).enumerate() {
                    let v: [f32; LANES] = pulp::cast(simd.max_f32s(a0[c], zero));
                    dst.copy_from_slice(&v);
                }
                if pair {
                    for (c, dst) in out[o + n..o + 2 * n].chunks_exact_mut(LANES).enumerate() {
                        let v: [f32; LANES] = pulp::cast(simd.max_f32s(a1[c], zero));
                        dst.copy_from_slice(&v);
                    }
                }
                x += 2;
            }
        }
    }

    #[inline(always)]
    pub(super) fn head(simd: V3, features: &[f32], w: &[f32], b: &[f32], logits: &mut [f32]) {
        let mut acc: [f32x8; HEAD_LANES] =
            core::array::from_fn(|c| load(&b[c * LANES..(c + 1) * LANES]));
        for (wk, &v) in w.chunks_exact(HEAD_N).zip(features) {
            let bv = simd.splat_f32s(v);
            for (c, a) in acc.iter_mut().enumerate() {
                *a = simd.mul_add_f32s(bv, load(&wk[c * LANES..(c + 1) * LANES]), *a);
            }
        }
        for (dst, a) in logits.chunks_mut(LANES).zip(acc) {
            let v: [f32; LANES] = pulp::cast(a);
            dst.copy_from_slice(&v[..dst.len()]);
        }
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

/// SIMD width the folded weights are laid out for: output channels are padded
/// to a multiple of it (padded channels have zero weights and bias, so they
/// stay zero through ReLU and pooling and add nothing downstream).
pub(crate) const LANES: usize = 8;

#[inline(always)]
fn conv_relu(conv: &FoldedConv, inp: &[f32], h: usize, w: usize, out: &mut [f32]) {
    match conv.cout / LANES {
        1 => conv_relu_c::<1>(conv, inp, h, w, out),
        2 => conv_relu_c::<2>(conv, inp, h, w, out),
        3 => conv_relu_c::<3>(conv, inp, h, w, out),
        4 => conv_relu_c::<4>(conv, inp, h, w, out),
        5 => conv_relu_c::<5>(conv, inp, h, w, out),
        6 => conv_relu_c::<6>(conv, inp, h, w, out),
        7 => conv_relu_c::<7>(conv, inp, h, w, out),
        8 => conv_relu_c::<8>(conv, inp, h, w, out),
        _ => conv_relu_dyn(conv, inp, h, w, out),
    }
}

type Lane = [f32; LANES];

#[inline(always)]
fn lane(s: &[f32]) -> &Lane {
    s.try_into().expect("a lane")
}

/// Accumulates `v * w` into `acc`, lane-wise.
#[inline(always)]
fn fma_lane(acc: &mut Lane, v: f32, w: &Lane) {
    for l in 0..LANES {
        acc[l] = v.mul_add(w[l], acc[l]);
    }
}

/// Direct 3x3 convolution over a zero-padded channel-last input with
/// `C * LANES` output channels held in registers; two output pixels at a
/// time share each weight load.
#[inline(always)]
fn conv_relu_c<const C: usize>(
    conv: &FoldedConv,
    inp: &[f32],
    h: usize,
    w: usize,
    out: &mut [f32],
) {
    let n = C * LANES;
    let cin = conv.cin;
    let pw = w + 2;
    let span = 3 * cin; // one kernel row: (kx, ci) contiguous in the padded input
    let mut bias = [[0f32; LANES]; C];
    for (b, src) in bias.iter_mut().zip(conv.b.chunks_exact(LANES)) {
        *b = *lane(src);
    }
    for y in 0..h {
        let mut x = 0;
        while x < w {
            let pair = x + 1 < w;
            let mut a0 = bias;
            let mut a1 = bias;
            for ky in 0..3 {
                let base = ((y + ky) * pw + x) * cin;
                let r0 = &inp[base..base + span];
                let wrow = &conv.w[ky * span * n..(ky + 1) * span * n];
                if pair {
                    let r1 = &inp[base + cin..base + cin + span];
                    for ((wk, &v0), &v1) in wrow.chunks_exact(n).zip(r0).zip(r1) {
                        for c in 0..C {
                            let wc = lane(&wk[c * LANES..(c + 1) * LANES]);
                            fma_lane(&mut a0[c], v0, wc);
                            fma_lane(&mut a1[c], v1, wc);
                        }
                    }
                } else {
                    for (wk, &v0) in wrow.chunks_exact(n).zip(r0) {
                        for c in 0..C {
                            fma_lane(&mut a0[c], v0, lane(&wk[c * LANES..(c + 1) * LANES]));
                        }
                    }
                }
            }
            let o = (y * w + x) * n;
            store_relu(&a0, &mut out[o..o + n]);
            if pair {
                store_relu(&a1, &mut out[o + n..o + 2 * n]);
            }
            x += 2;
        }
    }
}

#[inline(always)]
fn store_relu<const C: usize>(acc: &[Lane; C], out: &mut [f32]) {
    for (a, dst) in acc.iter().zip(out.chunks_exact_mut(LANES)) {
        for l in 0..LANES {
            dst[l] = a[l].max(0.0);
        }
    }
}

/// The same for any channel count (wider layers than the kernels above).
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
            let (r0, r1) = (&inp[i00..i00 + 2 * c], &inp[i10..i10 + 2 * c]);
            let (p00, p01) = r0.split_at(c);
            let (p10, p11) = r1.split_at(c);
            let o = ((y + off) * opw + x + off) * c;
            let dst = &mut out[o..o + c];
            for ((((d, &a), &b), &e), &f) in dst.iter_mut().zip(p00).zip(p01).zip(p10).zip(p11) {
                *d = a.max(b).max(e).max(f);
            }
        }
    }
}

/// Classes padded to whole SIMD lanes.
const HEAD_N: usize = CLASSES.div_ceil(LANES) * LANES;
const HEAD_LANES: usize = HEAD_N / LANES;

#[inline(always)]
fn head(features: &[f32], w: &[f32], b: &[f32], logits: &mut [f32]) {
    let mut acc = [[0f32; LANES]; HEAD_LANES];
    for (a, src) in acc.iter_mut().zip(b.chunks_exact(LANES)) {
        *a = *lane(src);
    }
    for (wk, &v) in w.chunks_exact(HEAD_N).zip(features) {
        for (a, wc) in acc.iter_mut().zip(wk.chunks_exact(LANES)) {
            fma_lane(a, v, lane(wc));
        }
    }
    for (dst, src) in logits.iter_mut().zip(acc.iter().flatten()) {
        *dst = *src;
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use crate::arch::Architecture;
    use crate::model::{DigitModel, ModelMetadata};

    /// Random weights with non-trivial batch-norm statistics, so that folding
    /// and the channel padding are exercised, on shapes that are not
    /// multiples of the SIMD width and odd spatial sizes.
    fn random_model(arch: Architecture, seed: u64) -> DigitModel {
        let mut w = crate::train::random_weights(&arch, seed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for (name, (_, v)) in w.0.iter_mut() {
            if name.ends_with("running_var") {
                v.iter_mut().for_each(|x| *x = rng.gen_range(0.2..3.0));
            } else if name.starts_with("bn") {
                v.iter_mut().for_each(|x| *x = rng.gen_range(-1.0..1.5));
            } else if name == "head.bias" {
                v.iter_mut().for_each(|x| *x = rng.gen_range(-0.5..0.5));
            }
        }
        DigitModel::from_parts(ModelMetadata::new(arch), w)
    }

    #[test]
    fn fast_path_matches_candle_on_random_weights() {
        let archs = [
            Architecture::default(),
            Architecture {
                channels: [5, 20, 72],
                width: 21,
                height: 30,
                ..Architecture::default()
            },
        ];
        for (k, arch) in archs.into_iter().enumerate() {
            let model = random_model(arch, 3 + k as u64);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
            let imgs: Vec<image::RgbImage> = (0..5)
                .map(|_| {
                    let (w, h) = (rng.gen_range(5..40), rng.gen_range(5..60));
                    image::RgbImage::from_fn(w, h, |_, _| image::Rgb(rng.gen()))
                })
                .collect();
            let fast = model.logits(&imgs).unwrap();
            let reference = model.logits_reference(&imgs).unwrap();
            let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
            for (a, b) in fast.iter().zip(&reference) {
                assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b} (scale {scale})");
            }
        }
    }
}
