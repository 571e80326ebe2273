//! Embedding the reader in a program of your own: run the service of a
//! config and react to its readings with a subscriber.
//!
//!     cargo run -p meter-service --example embed -- meter.toml

use meter_service::config::ResolvedConfig;
use meter_service::events::{Event, Subscriber};
use meter_service::{RunOptions, Service, Status};

/// Prints every stored value and every camera move.
struct MyListener;

impl Subscriber for MyListener {
    fn name(&self) -> String {
        "my-listener".into()
    }

    fn handle(&mut self, event: &Event) -> anyhow::Result<()> {
        match event {
            Event::Reading(r) if r.report.status == Status::Stored => {
                println!(
                    "{} = {:?} {}",
                    r.report.meter,
                    r.report.value,
                    r.report.unit.as_deref().unwrap_or("")
                );
            }
            Event::CameraMoved(m) => println!("{}: the camera moved", m.meter),
            _ => {}
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "meter.toml".into());
    let cfg = ResolvedConfig::load(path.as_ref())?;
    let service = Service::new(
        cfg,
        RunOptions {
            count: Some(3),
            ..RunOptions::default()
        },
    )?;
    service.subscribe(Box::new(MyListener))?;
    let summary = service.run()?;
    println!("{} readings, {} stored", summary.readings, summary.stored);
    Ok(())
}
