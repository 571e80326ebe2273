//! Host camera simulator (filled in by the firmware work).
fn main() {
    eprintln!("meter-camsim: not built yet");
    std::process::exit(1);
}
