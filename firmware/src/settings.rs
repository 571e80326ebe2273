//! The camera's sensor settings as `/status` reports them and `/control`
//! changes them, with the names and ranges of the ESP32 CameraWebServer.

use serde::{Deserialize, Serialize};

use crate::ControlError;

/// Frame sizes of the esp32-camera driver (`framesize_t`), up to the
/// OV2640's largest, UXGA. The discriminant is the value `/control` and
/// `/status` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameSize {
    /// 96x96.
    R96x96 = 0,
    /// QQVGA, 160x120.
    Qqvga = 1,
    /// QCIF, 176x144.
    Qcif = 2,
    /// HQVGA, 240x176.
    Hqvga = 3,
    /// 240x240.
    R240x240 = 4,
    /// QVGA, 320x240.
    Qvga = 5,
    /// CIF, 400x296.
    Cif = 6,
    /// HVGA, 480x320.
    Hvga = 7,
    /// VGA, 640x480.
    Vga = 8,
    /// SVGA, 800x600.
    Svga = 9,
    /// XGA, 1024x768.
    Xga = 10,
    /// HD, 1280x720.
    Hd = 11,
    /// SXGA, 1280x1024.
    Sxga = 12,
    /// UXGA, 1600x1200.
    Uxga = 13,
}

impl FrameSize {
    /// Every frame size, by index.
    pub const ALL: [FrameSize; 14] = [
        Self::R96x96,
        Self::Qqvga,
        Self::Qcif,
        Self::Hqvga,
        Self::R240x240,
        Self::Qvga,
        Self::Cif,
        Self::Hvga,
        Self::Vga,
        Self::Svga,
        Self::Xga,
        Self::Hd,
        Self::Sxga,
        Self::Uxga,
    ];

    /// From the driver's index; `None` when out of range.
    pub fn from_index(index: i64) -> Option<Self> {
        usize::try_from(index)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The driver's index.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// Width and height in pixels.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            Self::R96x96 => (96, 96),
            Self::Qqvga => (160, 120),
            Self::Qcif => (176, 144),
            Self::Hqvga => (240, 176),
            Self::R240x240 => (240, 240),
            Self::Qvga => (320, 240),
            Self::Cif => (400, 296),
            Self::Hvga => (480, 320),
            Self::Vga => (640, 480),
            Self::Svga => (800, 600),
            Self::Xga => (1024, 768),
            Self::Hd => (1280, 720),
            Self::Sxga => (1280, 1024),
            Self::Uxga => (1600, 1200),
        }
    }

    /// The frame size with exactly these dimensions, if any.
    pub fn for_dimensions(width: u32, height: u32) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.dimensions() == (width, height))
    }
}

/// A variable `/control?var=NAME&val=V` accepts, with its valid range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlVar {
    /// `framesize`: 0..=13, see [`FrameSize`].
    FrameSize,
    /// `quality`: JPEG quality 0..=63, lower is better (the OV2640's scale).
    Quality,
    /// `brightness`: -2..=2.
    Brightness,
    /// `contrast`: -2..=2.
    Contrast,
    /// `saturation`: -2..=2.
    Saturation,
    /// `sharpness`: -2..=2.
    Sharpness,
    /// `special_effect`: 0..=6 (none, negative, grayscale, red, green, blue, sepia).
    SpecialEffect,
    /// `wb_mode`: 0..=4 (auto, sunny, cloudy, office, home).
    WbMode,
    /// `awb`: 0 or 1.
    Awb,
    /// `awb_gain`: 0 or 1.
    AwbGain,
    /// `aec`: 0 or 1.
    Aec,
    /// `aec2`: 0 or 1.
    Aec2,
    /// `ae_level`: -2..=2.
    AeLevel,
    /// `aec_value`: 0..=1200.
    AecValue,
    /// `agc`: 0 or 1.
    Agc,
    /// `agc_gain`: 0..=30.
    AgcGain,
    /// `gainceiling`: 0..=6.
    GainCeiling,
    /// `bpc`: 0 or 1.
    Bpc,
    /// `wpc`: 0 or 1.
    Wpc,
    /// `raw_gma`: 0 or 1.
    RawGma,
    /// `lenc`: 0 or 1.
    Lenc,
    /// `hmirror`: 0 or 1.
    HMirror,
    /// `vflip`: 0 or 1.
    VFlip,
    /// `dcw`: 0 or 1.
    Dcw,
    /// `colorbar`: 0 or 1.
    Colorbar,
    /// `led_intensity`: flash LED PWM duty 0..=255 (0 = no flash).
    LedIntensity,
}

impl ControlVar {
    /// Every variable.
    pub const ALL: [ControlVar; 26] = [
        Self::FrameSize,
        Self::Quality,
        Self::Brightness,
        Self::Contrast,
        Self::Saturation,
        Self::Sharpness,
        Self::SpecialEffect,
        Self::WbMode,
        Self::Awb,
        Self::AwbGain,
        Self::Aec,
        Self::Aec2,
        Self::AeLevel,
        Self::AecValue,
        Self::Agc,
        Self::AgcGain,
        Self::GainCeiling,
        Self::Bpc,
        Self::Wpc,
        Self::RawGma,
        Self::Lenc,
        Self::HMirror,
        Self::VFlip,
        Self::Dcw,
        Self::Colorbar,
        Self::LedIntensity,
    ];

    /// The name in the query string and the `/status` JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::FrameSize => "framesize",
            Self::Quality => "quality",
            Self::Brightness => "brightness",
            Self::Contrast => "contrast",
            Self::Saturation => "saturation",
            Self::Sharpness => "sharpness",
            Self::SpecialEffect => "special_effect",
            Self::WbMode => "wb_mode",
            Self::Awb => "awb",
            Self::AwbGain => "awb_gain",
            Self::Aec => "aec",
            Self::Aec2 => "aec2",
            Self::AeLevel => "ae_level",
            Self::AecValue => "aec_value",
            Self::Agc => "agc",
            Self::AgcGain => "agc_gain",
            Self::GainCeiling => "gainceiling",
            Self::Bpc => "bpc",
            Self::Wpc => "wpc",
            Self::RawGma => "raw_gma",
            Self::Lenc => "lenc",
            Self::HMirror => "hmirror",
            Self::VFlip => "vflip",
            Self::Dcw => "dcw",
            Self::Colorbar => "colorbar",
            Self::LedIntensity => "led_intensity",
        }
    }

    /// The variable with this (exact, lower-case) name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The inclusive range of valid values.
    pub fn range(self) -> (i64, i64) {
        match self {
            Self::FrameSize => (0, FrameSize::Uxga as i64),
            Self::Quality => (0, 63),
            Self::Brightness
            | Self::Contrast
            | Self::Saturation
            | Self::Sharpness
            | Self::AeLevel => (-2, 2),
            Self::SpecialEffect | Self::GainCeiling => (0, 6),
            Self::WbMode => (0, 4),
            Self::AecValue => (0, 1200),
            Self::AgcGain => (0, 30),
            Self::LedIntensity => (0, 255),
            Self::Awb
            | Self::AwbGain
            | Self::Aec
            | Self::Aec2
            | Self::Agc
            | Self::Bpc
            | Self::Wpc
            | Self::RawGma
            | Self::Lenc
            | Self::HMirror
            | Self::VFlip
            | Self::Dcw
            | Self::Colorbar => (0, 1),
        }
    }
}

/// The sensor settings, serialised exactly as the firmware's `/status`
/// JSON (same keys; booleans as 0/1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSettings {
    /// Sensor clock in MHz (read-only).
    pub xclk: u8,
    /// Pixel format (4 = JPEG; read-only).
    pub pixformat: u8,
    /// Frame size index, see [`FrameSize`].
    pub framesize: u8,
    /// JPEG quality 0..=63, lower is better.
    pub quality: u8,
    /// -2..=2.
    pub brightness: i8,
    /// -2..=2.
    pub contrast: i8,
    /// -2..=2.
    pub saturation: i8,
    /// -2..=2.
    pub sharpness: i8,
    /// 0..=6.
    pub special_effect: u8,
    /// 0..=4.
    pub wb_mode: u8,
    /// 0/1.
    pub awb: u8,
    /// 0/1.
    pub awb_gain: u8,
    /// 0/1.
    pub aec: u8,
    /// 0/1.
    pub aec2: u8,
    /// -2..=2.
    pub ae_level: i8,
    /// 0..=1200.
    pub aec_value: u16,
    /// 0/1.
    pub agc: u8,
    /// 0..=30.
    pub agc_gain: u8,
    /// 0..=6.
    pub gainceiling: u8,
    /// 0/1.
    pub bpc: u8,
    /// 0/1.
    pub wpc: u8,
    /// 0/1.
    pub raw_gma: u8,
    /// 0/1.
    pub lenc: u8,
    /// 0/1.
    pub hmirror: u8,
    /// 0/1.
    pub vflip: u8,
    /// 0/1.
    pub dcw: u8,
    /// 0/1.
    pub colorbar: u8,
    /// Flash LED PWM duty 0..=255.
    pub led_intensity: u8,
}

impl Default for SensorSettings {
    /// The CameraWebServer's start-up state for an OV2640 at VGA, flash off.
    fn default() -> Self {
        Self {
            xclk: 20,
            pixformat: 4,
            framesize: FrameSize::Vga as u8,
            quality: 12,
            brightness: 0,
            contrast: 0,
            saturation: 0,
            sharpness: 0,
            special_effect: 0,
            wb_mode: 0,
            awb: 1,
            awb_gain: 1,
            aec: 1,
            aec2: 0,
            ae_level: 0,
            aec_value: 168,
            agc: 1,
            agc_gain: 0,
            gainceiling: 0,
            bpc: 0,
            wpc: 1,
            raw_gma: 1,
            lenc: 1,
            hmirror: 0,
            vflip: 0,
            dcw: 1,
            colorbar: 0,
            led_intensity: 0,
        }
    }
}

impl SensorSettings {
    /// The frame size (the field is always a valid index when changed
    /// through [`SensorSettings::apply`]; VGA otherwise).
    pub fn frame_size(&self) -> FrameSize {
        FrameSize::from_index(i64::from(self.framesize)).unwrap_or(FrameSize::Vga)
    }

    /// The current value of a variable.
    pub fn get(&self, var: ControlVar) -> i64 {
        match var {
            ControlVar::FrameSize => self.framesize.into(),
            ControlVar::Quality => self.quality.into(),
            ControlVar::Brightness => self.brightness.into(),
            ControlVar::Contrast => self.contrast.into(),
            ControlVar::Saturation => self.saturation.into(),
            ControlVar::Sharpness => self.sharpness.into(),
            ControlVar::SpecialEffect => self.special_effect.into(),
            ControlVar::WbMode => self.wb_mode.into(),
            ControlVar::Awb => self.awb.into(),
            ControlVar::AwbGain => self.awb_gain.into(),
            ControlVar::Aec => self.aec.into(),
            ControlVar::Aec2 => self.aec2.into(),
            ControlVar::AeLevel => self.ae_level.into(),
            ControlVar::AecValue => self.aec_value.into(),
            ControlVar::Agc => self.agc.into(),
            ControlVar::AgcGain => self.agc_gain.into(),
            ControlVar::GainCeiling => self.gainceiling.into(),
            ControlVar::Bpc => self.bpc.into(),
            ControlVar::Wpc => self.wpc.into(),
            ControlVar::RawGma => self.raw_gma.into(),
            ControlVar::Lenc => self.lenc.into(),
            ControlVar::HMirror => self.hmirror.into(),
            ControlVar::VFlip => self.vflip.into(),
            ControlVar::Dcw => self.dcw.into(),
            ControlVar::Colorbar => self.colorbar.into(),
            ControlVar::LedIntensity => self.led_intensity.into(),
        }
    }

    /// Applies `/control?var=NAME&val=VALUE`: the name must be known, the
    /// value a decimal integer within the variable's range. On error
    /// nothing changes.
    pub fn apply(&mut self, name: &str, value: &str) -> Result<ControlVar, ControlError> {
        let var = ControlVar::from_name(name).ok_or_else(|| ControlError::UnknownVariable {
            name: name.to_owned(),
        })?;
        let val: i64 = value
            .trim()
            .parse()
            .map_err(|_| ControlError::NotAnInteger {
                var: var.name(),
                value: value.to_owned(),
            })?;
        let (min, max) = var.range();
        if !(min..=max).contains(&val) {
            return Err(ControlError::OutOfRange {
                var: var.name(),
                value: val,
                min,
                max,
            });
        }
        self.set_in_range(var, val);
        Ok(var)
    }

    fn set_in_range(&mut self, var: ControlVar, val: i64) {
        // Ranges are checked by the caller, so these conversions are exact.
        let u8v = val.clamp(0, 255) as u8;
        let i8v = val.clamp(-128, 127) as i8;
        match var {
            ControlVar::FrameSize => self.framesize = u8v,
            ControlVar::Quality => self.quality = u8v,
            ControlVar::Brightness => self.brightness = i8v,
            ControlVar::Contrast => self.contrast = i8v,
            ControlVar::Saturation => self.saturation = i8v,
            ControlVar::Sharpness => self.sharpness = i8v,
            ControlVar::SpecialEffect => self.special_effect = u8v,
            ControlVar::WbMode => self.wb_mode = u8v,
            ControlVar::Awb => self.awb = u8v,
            ControlVar::AwbGain => self.awb_gain = u8v,
            ControlVar::Aec => self.aec = u8v,
            ControlVar::Aec2 => self.aec2 = u8v,
            ControlVar::AeLevel => self.ae_level = i8v,
            ControlVar::AecValue => self.aec_value = val.clamp(0, 1200) as u16,
            ControlVar::Agc => self.agc = u8v,
            ControlVar::AgcGain => self.agc_gain = u8v,
            ControlVar::GainCeiling => self.gainceiling = u8v,
            ControlVar::Bpc => self.bpc = u8v,
            ControlVar::Wpc => self.wpc = u8v,
            ControlVar::RawGma => self.raw_gma = u8v,
            ControlVar::Lenc => self.lenc = u8v,
            ControlVar::HMirror => self.hmirror = u8v,
            ControlVar::VFlip => self.vflip = u8v,
            ControlVar::Dcw => self.dcw = u8v,
            ControlVar::Colorbar => self.colorbar = u8v,
            ControlVar::LedIntensity => self.led_intensity = u8v,
        }
    }

    /// The `/status` JSON body.
    pub fn to_json(&self) -> String {
        // Serialising a struct of integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_status_keys() {
        let json: serde_json::Value =
            serde_json::from_str(&SensorSettings::default().to_json()).unwrap();
        for v in ControlVar::ALL {
            assert_eq!(ControlVar::from_name(v.name()), Some(v));
            assert!(json.get(v.name()).is_some(), "{} in /status", v.name());
        }
    }

    #[test]
    fn apply_validates() {
        let mut s = SensorSettings::default();
        assert_eq!(s.apply("quality", "10"), Ok(ControlVar::Quality));
        assert_eq!(s.quality, 10);
        assert!(matches!(
            s.apply("quality", "64"),
            Err(ControlError::OutOfRange { max: 63, .. })
        ));
        assert!(matches!(
            s.apply("brightness", "-3"),
            Err(ControlError::OutOfRange { min: -2, .. })
        ));
        assert!(matches!(
            s.apply("nope", "1"),
            Err(ControlError::UnknownVariable { .. })
        ));
        assert!(matches!(
            s.apply("vflip", "yes"),
            Err(ControlError::NotAnInteger { .. })
        ));
        assert_eq!(s.quality, 10, "failed sets change nothing");
        s.apply("framesize", "9").unwrap();
        assert_eq!(s.frame_size().dimensions(), (800, 600));
        s.apply("led_intensity", "255").unwrap();
        assert_eq!(s.get(ControlVar::LedIntensity), 255);
    }
}
