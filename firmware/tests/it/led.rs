//! Properties of the flash-LED state machine.

use firmware::{FlashConfig, FlashLed, LedAction, LedEvent, LedPhase};
use proptest::prelude::*;

fn event() -> impl Strategy<Value = LedEvent> {
    prop_oneof![
        any::<u8>().prop_map(LedEvent::SetIntensity),
        Just(LedEvent::CaptureRequested),
        Just(LedEvent::Tick),
        Just(LedEvent::FrameCaptured),
        Just(LedEvent::CaptureFailed),
    ]
}

proptest! {
    /// Whatever happens, the LED is never driven above its cap, is off
    /// whenever no capture is in progress, never stays on past the safety
    /// limit, and a frame is grabbed only after the warm-up.
    #[test]
    fn led_never_stays_on(
        warmup in 0u32..300,
        extra in 1u32..3000,
        cap in 1u8..=255,
        steps in proptest::collection::vec((0u64..400, event()), 0..80),
    ) {
        let cfg = FlashConfig::builder()
            .warmup_ms(warmup)
            .max_on_ms(warmup + extra)
            .max_duty(cap)
            .build()
            .unwrap();
        let mut led = FlashLed::new(cfg);
        let mut now = 0u64;
        let mut on_since: Option<u64> = None;
        for (dt, ev) in steps {
            now += dt;
            let step = led.handle(now, ev);
            prop_assert!(step.duty <= cap);
            prop_assert_eq!(step.duty, led.duty());
            if led.phase() == LedPhase::Idle {
                prop_assert_eq!(step.duty, 0, "idle but lit after {:?}", ev);
            }
            if matches!(ev, LedEvent::FrameCaptured | LedEvent::CaptureFailed) {
                prop_assert_eq!(step.duty, 0);
            }
            match (on_since, step.duty > 0) {
                (None, true) => on_since = Some(now),
                (Some(_), false) => on_since = None,
                _ => {}
            }
            if let Some(t0) = on_since {
                prop_assert!(now - t0 < u64::from(warmup + extra), "on for {} ms", now - t0);
            }
            if step.action == LedAction::Grab {
                if let Some(t0) = on_since {
                    prop_assert!(now - t0 >= u64::from(warmup), "grabbed before warm-up");
                }
            }
        }
        // Time passing alone switches a forgotten LED off.
        let step = led.handle(now + u64::from(warmup + extra), LedEvent::Tick);
        prop_assert_eq!(step.duty, 0);
        prop_assert_eq!(led.phase(), LedPhase::Idle);
    }
}

#[test]
fn full_capture_cycle() {
    let mut led = FlashLed::new(FlashConfig::default());
    led.handle(0, LedEvent::SetIntensity(90));
    let s = led.handle(1000, LedEvent::CaptureRequested);
    assert_eq!((s.duty, s.action), (90, LedAction::None));
    assert_eq!(led.handle(1149, LedEvent::Tick).action, LedAction::None);
    assert_eq!(led.handle(1150, LedEvent::Tick).action, LedAction::Grab);
    assert_eq!(led.handle(1200, LedEvent::FrameCaptured).duty, 0);
    // Changing intensity while idle does not light it.
    assert_eq!(led.handle(1300, LedEvent::SetIntensity(200)).duty, 0);
}
