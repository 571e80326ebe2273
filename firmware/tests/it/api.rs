//! Property tests of the request parser shared by device model and simulator.

use firmware::{CameraRequest, Query};
use proptest::prelude::*;

proptest! {
    /// Any variable name and value survive encoding into a target and parsing back.
    #[test]
    fn control_round_trips(var in ".*", val in ".*") {
        let req = CameraRequest::Control { var, val };
        prop_assert_eq!(CameraRequest::parse(&req.target()), Ok(Some(req)));
    }

    /// Arbitrary targets never panic, and the path is what precedes `?`.
    #[test]
    fn any_target_parses(target in ".*") {
        let q = Query::parse(&target);
        if !target.contains('?') && !target.contains('%') && !target.contains('+') {
            prop_assert_eq!(q.path(), target.as_str());
        }
        let _ = CameraRequest::parse(&target);
    }
}
