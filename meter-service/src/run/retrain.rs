//! The background retrain of `[retrain] in_run = true`.

use std::sync::Arc;
use std::time::Duration;

use meter_model::DigitModel;
use meter_vision::StopSignal;

use super::SharedModel;
use crate::config::ResolvedConfig;
use crate::events::{Event, RetrainEvent};
use crate::retrain::{retrain, Settings};
use crate::store::Store;

/// Checks whether a retrain is due now and every `every`, runs it when it
/// is, and hands a promoted version to the meters (and to `promoted`).
/// Stops between retrains.
pub(super) fn retrain_loop(
    cfg: &ResolvedConfig,
    every: Duration,
    shared: &SharedModel,
    store: &Store,
    stop: &StopSignal,
    promoted: &dyn Fn(u32),
) {
    use crate::retrain::RetrainOutcome;
    while !stop.is_stopped() {
        let outcome = retrain(cfg, &Settings::default(), true);
        match &outcome {
            // Checked every few minutes: not worth a line at info level.
            Ok(RetrainOutcome::NotDue(why)) => log::debug!("retrain decision=not_due why={why:?}"),
            Ok(RetrainOutcome::Refused {
                made,
                parent,
                current,
                candidate,
                why,
                ..
            }) => log::info!(
                "retrain decision=refused kept=v{parent} made={made:?} current_exact={:.4} candidate_exact={:.4} n={} why={why:?}",
                current.exact,
                candidate.exact,
                candidate.n
            ),
            Ok(RetrainOutcome::Promoted {
                made,
                version,
                path,
                parent,
                current,
                candidate,
                ..
            }) => {
                log::info!(
                    "retrain decision=promoted version=v{version} parent=v{parent} made={made:?} current_exact={:.4} candidate_exact={:.4} n={}",
                    current.exact,
                    candidate.exact,
                    candidate.n
                );
                match DigitModel::load(path) {
                    Ok(m) => {
                        shared.replace(m);
                        promoted(*version);
                    }
                    Err(e) => log::error!(
                        "retrain: model {} unreadable, the meters keep the previous one: {e}",
                        path.display()
                    ),
                }
            }
            Err(e) => log::error!("retrain decision=failed error={:?}", format!("{e:#}")),
        }
        if !matches!(outcome, Ok(RetrainOutcome::NotDue(_))) {
            store.bus().publish(Event::Retrain(Arc::new(RetrainEvent {
                time: time::OffsetDateTime::now_utc(),
                outcome: outcome.map_err(|e| format!("{e:#}")),
            })));
        }
        if stop.sleep(every) {
            break;
        }
    }
}
