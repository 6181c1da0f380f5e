//! Support shared by this crate's test binaries: the shipped `schemas/` folder and a
//! deployment's schemas directory made from it.
//!
//! (The same directory for the aswctl and end-to-end tests is
//! `asw_testbed::schemas_with_example_kind`; this crate cannot reach the testbed, which depends on
//! it and on tokio and lapin.)

use std::path::{Path, PathBuf};

/// The shipped `schemas/` folder of the source tree.
pub fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

/// Makes a deployment's schemas directory in `root`: the shipped XSDs (`schemas/*.xsd`) beside
/// a `kinds/` with the shipped kinds (`schemas/kinds/*`), and with `example_kind` the example
/// kind of `schemas/samples/kinds/kr-co/` too (its `.toml` files into `kinds/`, its XSDs beside
/// the others).
pub fn deployment(root: &Path, example_kind: bool) {
    std::fs::create_dir_all(root.join("kinds")).expect("mkdir");
    for entry in std::fs::read_dir(schemas()).expect("schemas") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "xsd") {
            std::fs::copy(&path, root.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    for entry in std::fs::read_dir(schemas().join("kinds")).expect("kinds") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            root.join("kinds").join(path.file_name().expect("name")),
        )
        .expect("copy");
    }
    if !example_kind {
        return;
    }
    // The example kind and its receipt: the kind files into kinds/, the XSDs beside the others.
    for entry in std::fs::read_dir(schemas().join("samples/kinds/kr-co")).expect("example") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        match path.extension().and_then(|x| x.to_str()) {
            Some("toml") => std::fs::copy(&path, root.join("kinds").join(name)),
            Some("xsd") => std::fs::copy(&path, root.join(name)),
            _ => continue,
        }
        .expect("copy");
    }
}
