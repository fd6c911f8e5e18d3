//! The bundled default model, embedded at build time from `models/default.json`.

use reprieve_model::Model;

#[cfg(bundled_model)]
const BUNDLED_JSON: Option<&str> = Some(include_str!(concat!(env!("OUT_DIR"), "/default_model.json")));
#[cfg(not(bundled_model))]
const BUNDLED_JSON: Option<&str> = None;

/// Loads the model at `path`, or the bundled default when `path` is `None`. Returns the model and its source.
pub fn load_model(path: Option<&std::path::Path>) -> anyhow::Result<(Model, String)> {
    match path {
        Some(p) => Ok((Model::load(p)?, p.display().to_string())),
        None => {
            let json =
                BUNDLED_JSON.ok_or_else(|| anyhow::anyhow!("this build has no bundled model; pass --model PATH"))?;
            let model = Model::from_json(json)
                .map_err(|e| anyhow::anyhow!("the bundled model does not load in this build: {e}"))?;
            Ok((model, "bundled".to_string()))
        }
    }
}
