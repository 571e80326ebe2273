//! Writes one synthetic meter frame to the path given as the first argument.
use meter_synth::{FrameParams, MeterLayout};

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "frame.png".into());
    let p = FrameParams {
        counter: 12349.7,
        rotation_deg: 3.0,
        shift: (6.0, -4.0),
        noise: 5.0,
        hotspot: Some(((300.0, 150.0), 60.0, 90.0)),
        seed: 1,
    };
    let f = MeterLayout::default().render(&p);
    f.image.save(&out).expect("write frame");
    println!(
        "{out}: counter {} digits {:?}",
        f.counter,
        f.digits.iter().map(|d| d.to_string()).collect::<Vec<_>>()
    );
}
