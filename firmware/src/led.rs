//! The flash LED around a capture, as a pure state machine.
//!
//! The CameraWebServer switches the flash on, waits for it to light the
//! scene (150 ms), grabs a frame and switches it off. On the device a grab
//! can fail or hang; the LED must never be left on, because it heats the
//! board and the meter window and wastes power. Here time is passed in as
//! milliseconds since boot, so the logic runs and is tested on the host.

use crate::FirmwareError;

/// Flash timing and limits; build with [`FlashConfig::builder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashConfig {
    warmup_ms: u32,
    max_on_ms: u32,
    max_duty: u8,
}

/// Builder of [`FlashConfig`].
#[derive(Debug, Clone, Copy)]
pub struct FlashConfigBuilder {
    config: FlashConfig,
}

impl Default for FlashConfig {
    /// 150 ms warm-up (as the CameraWebServer), at most 3 s on, full duty.
    fn default() -> Self {
        Self {
            warmup_ms: 150,
            max_on_ms: 3000,
            max_duty: 255,
        }
    }
}

impl FlashConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> FlashConfigBuilder {
        FlashConfigBuilder {
            config: Self::default(),
        }
    }

    /// Time from switching the LED on to grabbing the frame.
    pub fn warmup_ms(&self) -> u32 {
        self.warmup_ms
    }

    /// The longest the LED may stay on for one capture (warm-up included);
    /// past it the LED goes off and the capture is failed.
    pub fn max_on_ms(&self) -> u32 {
        self.max_on_ms
    }

    /// The highest PWM duty (0..=255) ever driven.
    pub fn max_duty(&self) -> u8 {
        self.max_duty
    }
}

impl FlashConfigBuilder {
    /// Warm-up time in ms.
    pub fn warmup_ms(mut self, ms: u32) -> Self {
        self.config.warmup_ms = ms;
        self
    }

    /// Safety limit on the on-time of one capture, ms.
    pub fn max_on_ms(mut self, ms: u32) -> Self {
        self.config.max_on_ms = ms;
        self
    }

    /// PWM duty cap (LED current limit).
    pub fn max_duty(mut self, duty: u8) -> Self {
        self.config.max_duty = duty;
        self
    }

    /// Checks that a capture can finish before the safety limit.
    pub fn build(self) -> Result<FlashConfig, FirmwareError> {
        let c = self.config;
        if c.max_on_ms <= c.warmup_ms {
            return Err(FirmwareError::FlashTiming {
                warmup_ms: c.warmup_ms,
                max_on_ms: c.max_on_ms,
            });
        }
        Ok(c)
    }
}

/// What happens to the flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedEvent {
    /// `/control?var=led_intensity`: the duty for the next captures
    /// (clamped to [`FlashConfig::max_duty`]).
    SetIntensity(u8),
    /// A capture was requested.
    CaptureRequested,
    /// Time passed (the device's loop calls this often).
    Tick,
    /// The frame buffer was obtained.
    FrameCaptured,
    /// Grabbing the frame failed.
    CaptureFailed,
}

/// Where a capture stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedPhase {
    /// No capture in progress; LED off.
    Idle,
    /// LED on, waiting for the scene to be lit.
    WarmingUp {
        /// When the LED went on, ms.
        since_ms: u64,
    },
    /// The frame may be grabbed now (LED on at the set duty, or off when
    /// the intensity is 0).
    Grabbing {
        /// When the capture started, ms.
        since_ms: u64,
    },
}

/// What the caller must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedAction {
    /// Nothing new.
    None,
    /// Grab the frame now.
    Grab,
    /// A capture is already in progress; this request was not started.
    Busy,
    /// The capture overran [`FlashConfig::max_on_ms`]: LED switched off,
    /// capture failed.
    TimedOut,
}

/// The result of one event: the PWM duty to drive and the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedStep {
    /// Duty to drive the LED with now (0 = off).
    pub duty: u8,
    /// What to do.
    pub action: LedAction,
}

/// The flash LED controller.
///
/// ```
/// use firmware::{FlashConfig, FlashLed, LedAction, LedEvent};
/// let mut led = FlashLed::new(FlashConfig::default());
/// led.handle(0, LedEvent::SetIntensity(200));
/// assert_eq!(led.handle(0, LedEvent::CaptureRequested).duty, 200);
/// assert_eq!(led.handle(100, LedEvent::Tick).action, LedAction::None);
/// assert_eq!(led.handle(150, LedEvent::Tick).action, LedAction::Grab);
/// assert_eq!(led.handle(170, LedEvent::FrameCaptured).duty, 0);
/// ```
#[derive(Debug, Clone)]
pub struct FlashLed {
    config: FlashConfig,
    intensity: u8,
    phase: LedPhase,
    duty: u8,
}

impl FlashLed {
    /// Idle, LED off, intensity 0 (the firmware's start-up state).
    pub fn new(config: FlashConfig) -> Self {
        Self {
            config,
            intensity: 0,
            phase: LedPhase::Idle,
            duty: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FlashConfig {
        &self.config
    }

    /// The duty driven now.
    pub fn duty(&self) -> u8 {
        self.duty
    }

    /// The duty the next capture will use.
    pub fn intensity(&self) -> u8 {
        self.intensity
    }

    /// The capture's phase.
    pub fn phase(&self) -> LedPhase {
        self.phase
    }

    /// Handles one event at time `now_ms` (ms since boot; a clock that
    /// goes backwards is treated as standing still).
    pub fn handle(&mut self, now_ms: u64, event: LedEvent) -> LedStep {
        // The safety limit comes first, whatever the event: a capture that
        // overran is over, and the caller learns it from `TimedOut`.
        let overrun = self.check_overrun(now_ms);
        let action = match event {
            LedEvent::SetIntensity(v) => {
                self.intensity = v.min(self.config.max_duty);
                if self.duty > 0 {
                    // As the firmware does: a change applies to a capture in progress.
                    self.duty = self.intensity;
                }
                LedAction::None
            }
            _ if overrun.is_some() => LedAction::TimedOut,
            LedEvent::CaptureRequested => match self.phase {
                LedPhase::Idle if self.intensity == 0 || self.config.warmup_ms == 0 => {
                    self.duty = self.intensity;
                    self.phase = LedPhase::Grabbing { since_ms: now_ms };
                    LedAction::Grab
                }
                LedPhase::Idle => {
                    self.duty = self.intensity;
                    self.phase = LedPhase::WarmingUp { since_ms: now_ms };
                    LedAction::None
                }
                _ => LedAction::Busy,
            },
            LedEvent::Tick => match self.phase {
                LedPhase::WarmingUp { since_ms }
                    if now_ms.saturating_sub(since_ms) >= u64::from(self.config.warmup_ms) =>
                {
                    self.phase = LedPhase::Grabbing { since_ms };
                    LedAction::Grab
                }
                _ => LedAction::None,
            },
            LedEvent::FrameCaptured | LedEvent::CaptureFailed => {
                self.off();
                LedAction::None
            }
        };
        LedStep {
            duty: self.duty,
            action: overrun.unwrap_or(action),
        }
    }

    fn off(&mut self) {
        self.phase = LedPhase::Idle;
        self.duty = 0;
    }

    /// Switches off a capture that has run past the safety limit.
    fn check_overrun(&mut self, now_ms: u64) -> Option<LedAction> {
        let since = match self.phase {
            LedPhase::Idle => return None,
            LedPhase::WarmingUp { since_ms } | LedPhase::Grabbing { since_ms } => since_ms,
        };
        if now_ms.saturating_sub(since) >= u64::from(self.config.max_on_ms) {
            self.off();
            Some(LedAction::TimedOut)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_is_validated() {
        assert!(FlashConfig::builder()
            .warmup_ms(500)
            .max_on_ms(500)
            .build()
            .is_err());
        assert!(FlashConfig::builder().warmup_ms(0).build().is_ok());
    }

    #[test]
    fn no_flash_grabs_at_once_and_hung_grab_times_out() {
        let mut led = FlashLed::new(FlashConfig::default());
        let s = led.handle(10, LedEvent::CaptureRequested);
        assert_eq!((s.duty, s.action), (0, LedAction::Grab));
        led.handle(20, LedEvent::FrameCaptured);
        led.handle(30, LedEvent::SetIntensity(100));
        led.handle(40, LedEvent::CaptureRequested);
        assert_eq!(
            led.handle(41, LedEvent::CaptureRequested).action,
            LedAction::Busy
        );
        assert_eq!(led.handle(190, LedEvent::Tick).action, LedAction::Grab);
        assert_eq!(led.duty(), 100);
        // The grab hangs: the safety limit switches the LED off.
        let s = led.handle(40 + 3000, LedEvent::Tick);
        assert_eq!((s.duty, s.action), (0, LedAction::TimedOut));
        assert_eq!(led.phase(), LedPhase::Idle);
    }

    #[test]
    fn intensity_is_capped() {
        let cfg = FlashConfig::builder().max_duty(80).build().unwrap();
        let mut led = FlashLed::new(cfg);
        led.handle(0, LedEvent::SetIntensity(255));
        assert_eq!(led.handle(0, LedEvent::CaptureRequested).duty, 80);
    }
}
