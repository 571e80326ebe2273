//! The model file: round trip, metadata, and clear errors for bad files.

use meter_model::{DigitModel, ModelError, METADATA_KEY};

use crate::helpers::digit;

fn shipped_bytes() -> Vec<u8> {
    DigitModel::shipped_bytes().to_vec()
}

#[test]
fn shipped_model_is_valid_small_and_described() {
    let bytes = DigitModel::shipped_bytes();
    assert!(
        bytes.len() <= 1 << 20,
        "model file is {} bytes",
        bytes.len()
    );
    let m = DigitModel::shipped();
    assert_eq!(m.metadata().classes, 100);
    assert_eq!(
        m.input_size(),
        (
            m.metadata().architecture.width,
            m.metadata().architecture.height
        )
    );
    assert!(m.metadata().temperature > 0.0);
}

#[test]
fn save_and_load_round_trip_gives_identical_predictions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.safetensors");
    let model = DigitModel::shipped();
    model.save(&path).expect("saves");
    let loaded = DigitModel::load(&path).expect("loads");
    assert_eq!(loaded.metadata(), model.metadata());
    let imgs: Vec<_> = ["0.0", "3.7", "9.9", "5.2"]
        .iter()
        .map(|l| digit(l, 20, 32))
        .collect();
    assert_eq!(
        loaded.predict_batch(&imgs).expect("predicts"),
        model.predict_batch(&imgs).expect("predicts")
    );
    assert_eq!(
        loaded.to_bytes().expect("bytes"),
        std::fs::read(&path).expect("read")
    );
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
}

fn load_err(bytes: &[u8], name: &str) -> (ModelError, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    let err = DigitModel::load(&path).expect_err("must fail");
    let text = err.to_string();
    assert!(text.contains(name), "error {text:?} does not name {name}");
    (err, text)
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = DigitModel::load(std::path::Path::new("/nonexistent/dir/model.safetensors"))
        .expect_err("missing");
    assert!(matches!(err, ModelError::Io { .. }));
    assert!(err
        .to_string()
        .contains("/nonexistent/dir/model.safetensors"));
}

#[test]
fn wrong_file_is_a_format_error_naming_it() {
    let (err, _) = load_err(b"GIF89a this is not a model", "picture.gif");
    assert!(matches!(err, ModelError::Format { .. }), "{err:?}");
    let (err, _) = load_err(b"", "empty.safetensors");
    assert!(matches!(err, ModelError::Format { .. }), "{err:?}");
}

#[test]
fn truncated_file_is_a_format_error_naming_it() {
    let bytes = shipped_bytes();
    for cut in [4, 100, bytes.len() / 2, bytes.len() - 1] {
        let (err, _) = load_err(&bytes[..cut], "truncated.safetensors");
        assert!(
            matches!(err, ModelError::Format { .. }),
            "cut {cut}: {err:?}"
        );
    }
}

/// Rewrites the JSON metadata of a model file.
fn with_metadata(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let model = DigitModel::shipped();
    let mut meta = serde_json::to_value(model.metadata()).expect("json");
    edit(&mut meta);
    // Re-serialise the same tensors with the edited metadata.
    let bytes = shipped_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid");
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.tensors().into_iter().collect();
    let md = std::collections::HashMap::from([(METADATA_KEY.to_owned(), meta.to_string())]);
    safetensors::serialize(tensors, &Some(md)).expect("serialises")
}

#[test]
fn incompatible_files_are_clear_errors_naming_them() {
    let (err, text) = load_err(
        &with_metadata(|m| m["format_version"] = 99.into()),
        "future.safetensors",
    );
    assert!(
        matches!(
            err,
            ModelError::Incompatible {
                what: "format_version",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(text.contains("99"), "{text}");

    let (err, _) = load_err(
        &with_metadata(|m| m["classes"] = 10.into()),
        "ten.safetensors",
    );
    assert!(
        matches!(
            err,
            ModelError::Incompatible {
                what: "classes",
                ..
            }
        ),
        "{err:?}"
    );

    // Metadata claiming wider layers than the tensors hold.
    let (err, _) = load_err(
        &with_metadata(|m| m["architecture"]["channels"][2] = 64.into()),
        "shape.safetensors",
    );
    assert!(matches!(err, ModelError::TensorShape { .. }), "{err:?}");

    let (err, _) = load_err(
        &with_metadata(|m| m["format"] = "something-else".into()),
        "other.safetensors",
    );
    assert!(
        matches!(err, ModelError::Incompatible { what: "format", .. }),
        "{err:?}"
    );

    let (err, _) = load_err(
        &with_metadata(|m| m["classes"] = "many".into()),
        "bad.safetensors",
    );
    assert!(matches!(err, ModelError::BadMetadata { .. }), "{err:?}");
}

#[test]
fn safetensors_without_our_metadata_is_rejected() {
    let bytes = shipped_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid");
    let plain = safetensors::serialize(st.tensors(), &None).expect("serialises");
    let (err, _) = load_err(&plain, "plain.safetensors");
    assert!(matches!(err, ModelError::MissingMetadata { .. }), "{err:?}");
}

#[test]
fn missing_tensor_is_named() {
    let bytes = shipped_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid");
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
    let kept: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "head.bias")
        .collect();
    let out = safetensors::serialize(kept, header.metadata()).expect("serialises");
    let (err, text) = load_err(&out, "partial.safetensors");
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{err:?}");
    assert!(text.contains("head.bias"), "{text}");
}
