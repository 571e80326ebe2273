//! One naming rule for self-filed and labelled digits: an image the reader
//! filed is never filed again by the labeller.

use meter_service::files::label_files;
use meter_service::label::{items, Key, Session, SessionOptions};
use meter_service::{RunOptions, Service};

use crate::helpers::folder_meter;

#[test]
fn a_digit_the_reader_filed_is_not_filed_again_by_the_labeller() {
    // The second frame's last roller is half way: its digit is not filed
    // by the reader (not settled), so the labeller has something to ask.
    let m = folder_meter("house", &[2024.0, 2025.0, 2025.5], "", "");
    let cfg = m.load();
    Service::new(cfg.clone(), RunOptions::default())
        .unwrap()
        .run()
        .unwrap();
    let self_filed = label_files(&cfg.dataset_dir).unwrap();
    assert!(
        self_filed.len() >= 6,
        "the stored readings' digits were filed: {self_filed:?}"
    );
    let model = meter_model::DigitModel::shipped();
    let mut list = items::from_frames(
        &m.dir.path().join("frames"),
        &cfg.meters[0],
        model.input_size(),
        &mut |w| panic!("{w}"),
    )
    .unwrap();
    items::add_guesses(&mut list, &model).unwrap();
    // Digits that did not move show the same picture in both frames.
    let unique: std::collections::HashSet<u64> = list.iter().map(|i| i.hash).collect();
    let total = unique.len();
    let session = Session::new(list, SessionOptions::for_config(&cfg, false)).unwrap();
    assert_eq!(
        session.len(),
        total - self_filed.len(),
        "the labeller asks only about digits not filed yet"
    );
    // Accept every guess: each picture ends up in the dataset exactly once.
    let keys: Vec<_> = (0..session.len()).map(|_| Ok(Key::Enter)).collect();
    session.run(keys, |_| Ok(())).unwrap();
    let all = label_files(&cfg.dataset_dir).unwrap();
    assert_eq!(all.len(), total, "{all:?}");
}
