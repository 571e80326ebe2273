//! Loading labelled folders and manifests: good and bad labels, unreadable files.

use meter_model::{read_source_list, Dataset, ModelError, Problem};

use crate::helpers::{digit, tenths, write_png};

#[test]
fn folders_n_and_n_m_load_and_bad_names_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = digit("3.0", 20, 32);
    write_png(dir.path(), "3", "meterA__a", &img);
    write_png(dir.path(), "3.7", "meterA__b", &img);
    write_png(dir.path(), "9.9", "c", &img);
    for bad in ["10", "3.", "x", "3.77", "-1"] {
        write_png(dir.path(), bad, "d", &img);
    }
    // Not an image, in a valid label folder.
    std::fs::write(dir.path().join("3.7").join("broken.jpg"), b"not a jpeg").expect("write");

    let data = Dataset::load(dir.path(), (20, 32)).expect("loads");
    let mut labels: Vec<_> = data.samples.iter().map(|s| s.label).collect();
    labels.sort();
    assert_eq!(labels, vec![tenths("3.0"), tenths("3.7"), tenths("9.9")]);
    // Source from the `source__hash` file-name convention, else the folder name.
    let src: Vec<_> = data.samples.iter().map(|s| s.source.as_str()).collect();
    assert_eq!(src.iter().filter(|s| **s == "meterA").count(), 2);
    let folder = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(src.contains(&folder.as_str()), "{src:?}");

    let bad_labels: Vec<_> = data
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::BadLabel { path, text, .. } => {
                assert!(path.ends_with(text), "{path:?} names {text}");
                Some(text.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(bad_labels.len(), 5, "{bad_labels:?}");
    let unreadable: Vec<_> = data
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::UnreadableImage { .. }))
        .map(|p| p.to_string())
        .collect();
    assert_eq!(unreadable.len(), 1);
    assert!(unreadable[0].contains("broken.jpg"), "{unreadable:?}");
}

#[test]
fn images_are_resized_to_the_requested_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_png(dir.path(), "5.5", "big", &digit("5.5", 60, 110));
    let data = Dataset::load(dir.path(), (20, 32)).expect("loads");
    assert_eq!(data.samples[0].image.dimensions(), (20, 32));
}

#[test]
fn manifest_gives_labels_sources_and_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = digit("1.0", 20, 32);
    write_png(dir.path(), "files", "a", &img);
    write_png(dir.path(), "files", "b", &img);
    write_png(dir.path(), "files", "c", &img);
    std::fs::write(
        dir.path().join("manifest.csv"),
        "file,label,source,kind\n\
         files/a.png,1.2,water/x,watermeter\n\
         files/b.png,7,power/y,powermeter\n\
         files/c.png,12.5,power/y,powermeter\n\
         files/missing.png,4.4,power/y,powermeter\n",
    )
    .expect("manifest");
    let data = Dataset::load(dir.path(), (20, 32)).expect("loads");
    assert_eq!(data.len(), 2);
    assert_eq!(data.samples[0].label, tenths("1.2"));
    assert_eq!(data.samples[0].source, "water/x");
    assert_eq!(data.samples[0].kind.as_deref(), Some("watermeter"));
    assert_eq!(data.samples[1].label, tenths("7.0"));
    assert_eq!(data.problems.len(), 2, "{:?}", data.problems);
    assert!(data.problems.iter().any(|p| matches!(p,
        Problem::BadLabel { text, .. } if text == "12.5")));
    assert!(data.problems.iter().any(|p| matches!(p,
        Problem::UnreadableImage { path, .. } if path.ends_with("missing.png"))));
    let only = data.with_sources(&["power/y".to_owned()]);
    assert_eq!(only.len(), 1);
}

#[test]
fn manifest_without_label_column_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("manifest.csv"), "file,value\na.png,1\n").expect("write");
    let err = Dataset::load(dir.path(), (20, 32)).expect_err("no label column");
    assert!(matches!(err, ModelError::Manifest { .. }), "{err:?}");
    assert!(err.to_string().contains("manifest.csv"), "{err}");
}

#[test]
fn empty_and_missing_folders_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Dataset::load(dir.path(), (20, 32)).expect_err("empty");
    assert!(matches!(err, ModelError::EmptyDataset { .. }), "{err:?}");
    let missing = dir.path().join("nope");
    let err = Dataset::load(&missing, (20, 32)).expect_err("missing");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn subsample_is_seeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..10 {
        write_png(dir.path(), "2.0", &format!("s{i}"), &digit("2.0", 20, 32));
    }
    let data = Dataset::load(dir.path(), (20, 32)).expect("loads");
    let pick = |seed| {
        let mut d = data.clone();
        d.subsample(4, seed);
        d.samples.iter().map(|s| s.path.clone()).collect::<Vec<_>>()
    };
    assert_eq!(pick(1).len(), 4);
    assert_eq!(pick(1), pick(1));
}

#[test]
fn source_lists_skip_comments_and_blank_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sources.txt");
    std::fs::write(
        &path,
        "# held out\npowermeter/betar/1\n\n  watermeter/x  # trailing note\n#all comment\n",
    )
    .expect("write");
    assert_eq!(
        read_source_list(&path).expect("reads"),
        ["powermeter/betar/1", "watermeter/x"]
    );
    let err = read_source_list(&dir.path().join("missing.txt")).expect_err("missing");
    assert!(err.to_string().contains("missing.txt"), "{err}");
}
