//! Embeds the bundled default model (`models/default.json`) when the checkout has one, so `reprieve serve` and
//! `reprieve score` work with no flags. A checkout without it still builds; the binary then says so.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let model = manifest.join("../../models/default.json");
    println!("cargo:rerun-if-changed={}", model.display());
    println!("cargo::rustc-check-cfg=cfg(bundled_model)");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("default_model.json");
    match std::fs::read(&model) {
        Ok(bytes) => {
            if std::fs::write(&out, bytes).is_ok() {
                println!("cargo:rustc-cfg=bundled_model");
            }
        }
        Err(_) => println!("cargo:warning=models/default.json not found: this build has no bundled model"),
    }
}
